"""Document groups for test fixtures built on the seed corpus."""


def pseudo_document(sentence) -> str:
    """The seed corpus has five articles, too few to split by document in tests: runs of four sentences of an
    article stand in for documents (the `group` every split keeps together)."""
    return f"{sentence.article_id}#{sentence.index // 4}"
