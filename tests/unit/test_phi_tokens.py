"""The PHI scan's reading of text, without a warehouse: which MRN candidates a text
holds (hyphenated, prefixed, never a part of a word), and the redaction by look that
an alert gets when no warehouse can be asked (healthops.reports.phi)."""

from __future__ import annotations

import pytest

from healthops.reports.phi import REDACTED, _candidates, _tokens, redact_likely_identifiers


@pytest.mark.parametrize(
    "text, stored",
    [
        ("bed A-1234-56 today", "A-1234-56"),  # stored with hyphens, shown whole
        ("(A-1234-56).", "A-1234-56"),
        ("A-1234-56/B", "A-1234-56"),  # a run of joined words inside a longer one
        ("ref 12.345.678", "12.345.678"),
        ("MRN004512", "004512"),  # a prefix glued to it
        ("mrn004512", "004512"),
        ("MRN:004512", "004512"),
        ("MRN: 004512", "004512"),
        ("#004512", "004512"),
        ("MRN-004512", "004512"),
        ("MRN #004512", "004512"),
        ("MR.004512", "004512"),
        ("MRN-A-1234-56", "A-1234-56"),
        ("see M7734001.", "M7734001"),
    ],
)
def test_an_mrn_shown_whole_or_after_a_prefix_is_a_candidate(text, stored):
    assert stored.upper() in _candidates(text)


@pytest.mark.parametrize(
    "text, stored",
    [
        ("004512", "4512"),  # never a part of a longer run of digits
        ("A4512", "4512"),
        ("45120", "4512"),
        ("MRN0045120", "004512"),
        ("A123456", "A-1234-56"),  # another spelling is other text
        ("A 1234 56", "A-1234-56"),
        ("XMRN004512", "004512"),  # not a prefix when glued to a longer word
    ],
)
def test_a_part_of_a_word_is_not_a_candidate(text, stored):
    assert stored.upper() not in _candidates(text)


def test_words_are_still_the_runs_of_letters_and_digits_in_order():
    assert _tokens("Winterbottom, Rosalind (MRN-004512)") == ["WINTERBOTTOM", "ROSALIND", "MRN", "004512"]


def test_runs_are_bounded():
    # a long dotted number gives runs of up to six words, not every substring
    cands = _candidates("1.2.3.4.5.6.7.8")
    assert "1.2.3.4.5.6" in cands and "1.2.3.4.5.6.7" not in cands and "8" in cands


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "DataError: unknown unit 'O'BRIEN WARD' for visit V1",
            f"DataError: unknown unit '{REDACTED}' for visit V1",
        ),
        ("bad PID-5 WINTERBOTTOM^ROSALIND^Q in C1", f"bad PID-5 {REDACTED} in C1"),
        ("no visit for MRN M7734001", f"no visit for MRN {REDACTED}"),
        ("patient A-1234-56 refused", f"patient {REDACTED} refused"),
        ('unparseable date "19480719x"', f'unparseable date "{REDACTED}"'),
        ("born 19480719", f"born {REDACTED}"),
    ],
)
def test_without_a_warehouse_what_looks_like_an_identifier_is_redacted(text, expected):
    out, n = redact_likely_identifiers(text)
    assert out == expected and n == 1


@pytest.mark.parametrize(
    "text",
    [
        "BlockingQualityFailure: blocking data-quality rules failed for 2026-11-02: CEN-011",
        "OperationalError: connection to 127.0.0.1 port 5432 failed",
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ],
)
def test_dates_rule_ids_addresses_and_errnos_are_kept(text):
    assert redact_likely_identifiers(text) == (text, 0)
