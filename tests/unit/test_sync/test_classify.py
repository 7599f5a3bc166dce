"""Provider/reseller classification from messy Email Bison tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisonsync.sync.classify import TagRules, domain_of, tag_names

RULES = TagRules()


@pytest.mark.parametrize(
    ("tags", "provider", "provider_tag", "reseller", "reseller_tag"),
    [
        (["Microsoft ", "Zapmail", "Warming"], "Microsoft", "Microsoft ", "Zapmail", "Zapmail"),
        (["  google", "cheapinboxes", "9/17"], "Google", "  google", "CheapInboxes", "cheapinboxes"),
        (["GMAIL"], "Gmail", "GMAIL", None, None),
        (["Outlook", "Microsoft"], "Outlook", "Outlook", None, None),  # first provider tag in array order wins
        (["Inbox Warmup", "Healthy"], None, None, None, None),  # the predecessor's substring bug: not a reseller
        (["Reseller", "Inbox"], None, None, None, None),
        (["ScaledMail - batch 3", "Yahoo"], "Yahoo", "Yahoo", "ScaledMail", "ScaledMail - batch 3"),
        (["Mailrocket"], None, None, None, None),  # whole words only: not Mailr
        (["mailr", "iCloud "], "iCloud", "iCloud ", "Mailr", "mailr"),
        ([], None, None, None, None),
    ],
)
def test_classification_table(
    tags: list[str], provider: str | None, provider_tag: str | None, reseller: str | None, reseller_tag: str | None
) -> None:
    got = RULES.classify(tags)
    assert (got.provider, got.provider_tag, got.reseller, got.reseller_tag) == (
        provider,
        provider_tag,
        reseller,
        reseller_tag,
    )


def test_rules_from_file_override(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"resellers": {"Acme Boxes": ["acme boxes", "acmebox"]}}))
    rules = TagRules.from_file(path)
    assert rules.classify(["ACMEBOX", "Google"]).reseller == "Acme Boxes"
    assert rules.classify(["Zapmail"]).reseller is None  # replaced, not merged
    assert rules.classify(["Google"]).provider == "Google"  # providers keep the defaults


def test_tag_names_and_domain() -> None:
    assert tag_names([{"id": 1, "name": "Google"}, {"id": 2}, "junk"]) == ["Google"]
    assert tag_names(None) == []
    assert domain_of("Rep@Client-A-Mail.com") == "client-a-mail.com"
    assert domain_of("no-at-sign") is None
