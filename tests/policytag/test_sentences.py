"""Sentence splitting in English and Vietnamese, with offsets that point into the text."""

import pytest

from policytag.sentences import split_line


def split(text: str) -> list[str]:
    spans = split_line(text, 0, len(text))
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()
    return [text[start:end] for start, end in spans]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Vietnam has threatened to shut down Facebook <FB.O> in the country, a senior official at the U.S. firm "
         "said. The ministry disagreed.",
         ["Vietnam has threatened to shut down Facebook <FB.O> in the country, a senior official at the U.S. firm "
          "said.", "The ministry disagreed."]),
        ("According to Mr. Hung, the code will be signed. It was submitted in April.",
         ["According to Mr. Hung, the code will be signed.", "It was submitted in April."]),
        ("We’ve told them no. That request came with threats.", ["We’ve told them no.", "That request came with threats."]),
        ("See Art. 5 of the law. No. 3 is next.", ["See Art. 5 of the law.", "No. 3 is next."]),
        ("“We made an agreement in April. Facebook has upheld our end,” said the official.",
         ["“We made an agreement in April.", "Facebook has upheld our end,” said the official."]),
        ("“What can be done?” asked Deputy Dao. He waited.", ["“What can be done?” asked Deputy Dao.", "He waited."]),
        ("The law took effect on Jan. 1, 2019. It bans anti-state posts.",
         ["The law took effect on Jan. 1, 2019.", "It bans anti-state posts."]),
        ("J. R. Smith wrote it at 2 p.m. Monday. Then he left.", ["J. R. Smith wrote it at 2 p.m. Monday.", "Then he left."]),
        ("Revenue was $1.5 billion. Tax was 0.",  ["Revenue was $1.5 billion.", "Tax was 0."]),
        ("• Users must not post illegal content.", ["Users must not post illegal content."]),
        ("Fake news", ["Fake news"]),
        ("1. Online hosts must remove the content. They must do so expeditiously.",
         ["1. Online hosts must remove the content.", "They must do so expeditiously."]),
        ("Article 2. Scope", ["Article 2. Scope"]),
        ("It was enacted as Pub. L. 105–277, 112 Stat. 2681. It took effect in 2000.",
         ["It was enacted as Pub. L. 105–277, 112 Stat. 2681.", "It took effect in 2000."]),
    ],
)
def test_english(text, expected):
    assert split(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Bộ Thông tin và Truyền thông yêu cầu các nền tảng gỡ bỏ nội dung vi phạm. Facebook đã gỡ 2.500 bài viết.",
         ["Bộ Thông tin và Truyền thông yêu cầu các nền tảng gỡ bỏ nội dung vi phạm.", "Facebook đã gỡ 2.500 bài viết."]),
        ("Hội thảo diễn ra tại TP. Hồ Chí Minh ngày 12/11/2024. PGS. TS. Nguyễn Văn A phát biểu khai mạc.",
         ["Hội thảo diễn ra tại TP. Hồ Chí Minh ngày 12/11/2024.", "PGS. TS. Nguyễn Văn A phát biểu khai mạc."]),
        ("Luật An ninh mạng có hiệu lực từ năm 2019! Đây là bước quan trọng… Ông Hùng nói: “Chủ quyền số là ưu tiên.” "
         "Điều đó rõ ràng.",
         ["Luật An ninh mạng có hiệu lực từ năm 2019!", "Đây là bước quan trọng…",
          "Ông Hùng nói: “Chủ quyền số là ưu tiên.”", "Điều đó rõ ràng."]),
        ("Theo Điều 26 của Luật, doanh nghiệp phải lưu trữ dữ liệu tại Việt Nam. Ảnh minh họa",
         ["Theo Điều 26 của Luật, doanh nghiệp phải lưu trữ dữ liệu tại Việt Nam.", "Ảnh minh họa"]),
        ("Điều 16. Phòng ngừa, xử lý thông tin trên không gian mạng", ["Điều 16. Phòng ngừa, xử lý thông tin trên không gian mạng"]),
        ("a) Tuyên truyền xuyên tạc, phỉ báng chính quyền nhân dân;", ["a) Tuyên truyền xuyên tạc, phỉ báng chính quyền nhân dân;"]),
    ],
)
def test_vietnamese(text, expected):
    assert split(text) == expected
