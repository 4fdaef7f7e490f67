"""Reading what users really give: encodings, BOMs, line ends, HTML, and bad files with clear errors."""

import codecs
import unicodedata

import pytest

from policytag.articles import ArticleError, read_article, slugify
from policytag.segment import segment_files

TEXT = "Vietnam vows to identify users\n\nThe ministry asked Facebook to verify the identity of users.\n"


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        TEXT.replace("\n", "\r\n").encode("utf-8"),
        TEXT.encode("utf-16"),
    ],
    ids=["utf8", "utf8-bom", "crlf", "utf16-bom"],
)
def test_text_encodings_give_the_same_article(tmp_path, data):
    path = tmp_path / "Some Article.txt"
    path.write_bytes(data)
    article = read_article(path)
    assert article.id == "some-article"
    assert article.text == TEXT


def test_vietnamese_nfd_is_made_nfc(tmp_path):
    nfc = "Bộ Thông tin và Truyền thông yêu cầu gỡ bỏ nội dung.\n"
    path = tmp_path / "vi.txt"
    path.write_text(unicodedata.normalize("NFD", nfc), encoding="utf-8")
    assert read_article(path).text == nfc


def test_html_main_text(tmp_path):
    html = """<!doctype html><html><head><title>t</title><script>var x = "<p>no</p>";</script></head><body>
    <nav><ul><li>Home</li><li>News</li></ul></nav>
    <article><h1>Vietnam &amp; TikTok</h1><p>The ministry <b>accused</b> TikTok of failing to block content.
    It gave a deadline.</p><p>Users &lt;must&gt; verify their identity.</p></article>
    <footer>Copyright © 2024</footer></body></html>"""
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    article = read_article(path)
    assert article.text == ("Vietnam & TikTok\n\nThe ministry accused TikTok of failing to block content. It gave a "
                            "deadline.\n\nUsers <must> verify their identity.\n")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (b"  \n\n ", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"Vi\xea\xf2t Nam: Ngh\xf2i \xf0i\xeanh v\xea\xcc", "not valid UTF-8"),  # Windows-1258 Vietnamese
        ("Café and crème".encode("latin-1"), "not valid UTF-8"),
        (b"<html><body><script>1</script></body></html>", "empty article"),
    ],
    ids=["empty", "blank", "binary", "cp1258", "latin1", "html-without-text"],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, data, message):
    path = tmp_path / "bad.html"
    path.write_bytes(data)
    with pytest.raises(ArticleError) as error:
        read_article(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_bad_file_does_not_stop_the_others(tmp_path):
    (tmp_path / "a.txt").write_text("First article. It is fine.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\xfa\x00\x00binary")
    (tmp_path / "c.txt").write_bytes(b"")
    (tmp_path / "d.txt").write_text("Second article is fine too.\n", encoding="utf-8")
    done, skipped = segment_files([tmp_path])
    assert [item.article.id for item in done] == ["a", "d"]
    assert sorted(item.source for item in skipped) == [str(tmp_path / "b.txt"), str(tmp_path / "c.txt")]


def test_slugify():
    assert slugify("Vietnam's Ambition for a Robust Social Media Landscape") == \
        "vietnams-ambition-for-a-robust-social-media-landscape"
    assert slugify("Đường dây nóng: Chủ quyền số") == "duong-day-nong-chu-quyen-so"
