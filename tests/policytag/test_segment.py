"""Segmentation of the real corpus: counts, offsets, languages, no furniture left, stable ids."""

import unicodedata

import pytest

from policytag.articles import Article, read_article
from policytag.segment import segment_article, segment_files

EXPECTED_SENTENCES = {
    "vietnam-accuses-tiktok-of-failing-to-block-illegal-content": 14,
    "vietnam-issues-social-media-code-of-conduct": 12,
    "exclusive-vietnam-threatens-to-shut-down-facebook-over-censorship-requests": 26,
    "vietnams-ambition-for-a-robust-social-media-landscape": 29,
    "vietnam-vows-to-identify-social-network-users": 26,
}
FURNITURE = [
    "Skip to main content", "LoginRegister", "Datafloq", "Data and Technology Insights", "2 min read",
    "floq.to/aCtv3", "By James Pearson", "Reporting by", "Categories:", "Tags:", "Primary Sidebar", "Newsletter",
    "cookie", "Software Engineer", "GoDaddy", "Copyright ©", "By Viet Tuan", "Photo by", "Photo:", "go to top",
    "Log in", "Reactions:", "Share:", "Related news", "Prime Minister reaffirms", "Quang Phong – Thu Hang",
    "Flag, Vietnam Flag",
]
CONTENT = [
    "Why does it matter?", "‘CLEAR RESPONSIBILITY’", "Taxation", "Fake news", "Cooperation from Facebook, Google",
    "Vietnam’s Ambition for a Robust Social Media Landscape", "We’ve told them no.",
]


@pytest.fixture(scope="module")
def corpus(raw_dir):
    done, skipped = segment_files([raw_dir])
    assert skipped == []
    return {item.article.id: item for item in done}


def test_sentence_counts(corpus):
    assert {article_id: len(item.sentences) for article_id, item in corpus.items()} == EXPECTED_SENTENCES


def test_offsets_point_into_the_raw_text(corpus, raw_dir):
    for item in corpus.values():
        raw = (raw_dir / f"{item.article.id}.txt").read_text(encoding="utf-8")
        assert item.article.text == raw
        for index, sentence in enumerate(item.sentences):
            assert raw[sentence.start:sentence.end] == sentence.text
            assert sentence.index == index and sentence.article_id == item.article.id
            assert sentence.lang == "en"


def test_no_furniture_left_and_content_kept(corpus):
    texts = [sentence.text for item in corpus.values() for sentence in item.sentences]
    joined = "\n".join(texts)
    for fragment in FURNITURE:
        assert fragment not in joined, fragment
    for sentence in CONTENT:
        assert sentence in texts, sentence
    assert sum(len(item.removed) for item in corpus.values()) == 163


def test_ids_are_unique_and_survive_edits(corpus):
    item = corpus["vietnam-issues-social-media-code-of-conduct"]
    ids = [sentence.id for sentence in item.sentences]
    assert len(set(ids)) == len(ids)
    text = item.article.text
    first, second = item.sentences[1], item.sentences[2]
    edited = (text[:first.start] + "A new first sentence was added here. " + text[first.start:second.start]
              + text[second.end:].replace("The code asks", "The new code asks"))
    edited_ids = {s.text: s.id for s in segment_article(Article(item.article.id, edited)).sentences}
    for sentence in item.sentences:
        if sentence is second or sentence.text.startswith("The code asks"):
            assert sentence.text not in edited_ids
        else:
            assert edited_ids[sentence.text] == sentence.id


def test_vietnamese_article(tmp_path):
    text = ("Việt Nam yêu cầu các nền tảng xuyên biên giới tuân thủ pháp luật\n\n"
            "Bộ trưởng Nguyễn Mạnh Hùng cho biết Bộ TT&TT sẽ yêu cầu Facebook, Google gỡ bỏ thông tin sai sự thật. "
            "Theo Nghị định 53, dữ liệu người dùng Việt Nam phải được lưu trữ tại Việt Nam.\n\n"
            "• Trang chủ\n• Đăng nhập\n\nTheo TTXVN.\n")
    path = tmp_path / "viet.txt"
    path.write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    result = segment_article(read_article(path))
    assert result.lang == "vi"
    assert [s.text for s in result.sentences] == [
        unicodedata.normalize("NFC", t) for t in (
            "Việt Nam yêu cầu các nền tảng xuyên biên giới tuân thủ pháp luật",
            "Bộ trưởng Nguyễn Mạnh Hùng cho biết Bộ TT&TT sẽ yêu cầu Facebook, Google gỡ bỏ thông tin sai sự thật.",
            "Theo Nghị định 53, dữ liệu người dùng Việt Nam phải được lưu trữ tại Việt Nam.",
            "Theo TTXVN.",
        )
    ]
    assert all(s.lang == "vi" for s in result.sentences[:3])


def test_pool_in_both_languages(pool_dir):
    done, skipped = segment_files([pool_dir])
    assert skipped == [] and len(done) == 31
    by_language = {}
    for item in done:
        by_language.setdefault(item.lang, []).append(item.article.id)
        assert item.article.id[:2] == item.lang  # files are named <lang>-<slug>.txt
        for sentence in item.sentences:
            assert item.article.text[sentence.start:sentence.end] == sentence.text
    assert len(by_language["en"]) == 11 and len(by_language["vi"]) == 20
    texts = [s.text for item in done for s in item.sentences]
    assert "1. Thông tin trên không gian mạng có nội dung tuyên truyền chống Nhà nước Cộng hòa xã hội chủ nghĩa " \
           "Việt Nam bao gồm:" in texts
    assert not [t for t in texts if t in ("1.", "2.", "a)")]
