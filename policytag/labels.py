"""The label schema: the one place where policytag names its labels.

Every other module takes label names, their order and their descriptions from here. The descriptions are the
one-line definitions of ../LABELS.md; the classifier uses them as a prior (see policytag/training/), annotators see
them in Label Studio (see policytag/annotation/).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    description: str


LABELS: tuple[Label, ...] = (
    Label(
        "censorship_demand",
        "An authority demands, pressures or legally obliges a platform or its users to remove, block, restrict or "
        "not post content, threatens or applies sanctions to get it, or a platform complies with or resists such "
        "demands; also prosecution for online expression and bans on kinds of online speech.",
    ),
    Label(
        "privacy",
        "Users' privacy and personal data: privacy rights, collection, storage, disclosure or protection of user "
        "data, demands to identify or reveal users, real-name and identity-verification rules, keeping users' data "
        "in-country.",
    ),
    Label(
        "child_safety",
        "Protecting children or minors from harmful or inappropriate content, contact or exploitation online.",
    ),
    Label(
        "intellectual_property",
        "Copyright, intellectual-property rights, piracy and infringing content.",
    ),
    Label(
        "taxation",
        "Taxes, tax obligations or tax collection for platforms, and platform revenues discussed as a basis for tax.",
    ),
    Label(
        "sovereignty",
        "National or cyber sovereignty, national security, state control over the digital space and technology, "
        "domestic platforms to reduce dependence on foreign ones, and requiring foreign platforms to obey local law, "
        "open local offices or store data on national territory.",
    ),
)

LABEL_NAMES: tuple[str, ...] = tuple(label.name for label in LABELS)
NONE_CHOICE = "none"
"""The explicit 'no label' choice annotators make; it is never a label of the schema."""


class UnknownLabelError(ValueError):
    pass


def description(name: str) -> str:
    for label in LABELS:
        if label.name == name:
            return label.description
    raise UnknownLabelError(f"unknown label {name!r}; known labels: {', '.join(LABEL_NAMES)}")


def validate_labels(names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the names in schema order, without duplicates; raise UnknownLabelError for a name not in the schema."""
    unknown = sorted(set(names) - set(LABEL_NAMES))
    if unknown:
        raise UnknownLabelError(f"unknown label(s) {', '.join(unknown)}; known labels: {', '.join(LABEL_NAMES)}")
    return [name for name in LABEL_NAMES if name in set(names)]


def to_multi_hot(names: list[str] | tuple[str, ...]) -> list[int]:
    chosen = set(validate_labels(names))
    return [int(name in chosen) for name in LABEL_NAMES]


def from_multi_hot(vector) -> list[str]:
    if len(vector) != len(LABEL_NAMES):
        raise ValueError(f"expected {len(LABEL_NAMES)} values in schema order, got {len(vector)}")
    return [name for name, value in zip(LABEL_NAMES, vector) if value]
