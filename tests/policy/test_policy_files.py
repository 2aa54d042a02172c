"""Policy sets as data: malformed ones are rejected with their location; fuzzed edits never crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.policy import MalformedPolicy, compile_policy, default_policy
from coffer.policy.engine import default_policy_text, default_schema_text

SCHEMA = default_schema_text()
TEXT = default_policy_text()


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_default_policy_compiles_and_names_every_rule() -> None:
    """The shipped policy set compiles and every rule has its own @id."""
    rules = [rule.rule_id for rule in default_policy().rules]
    assert len(rules) == len(set(rules))
    assert {"halt", "freeze", "whitelist.time_lock", "velocity.client", "approvals.tier2"} <= set(rules)


def test_syntax_error_names_its_line() -> None:
    """A typo inside the ninth policy is reported at its line and column."""
    broken = TEXT.replace("when { context.account_frozen };", "when { context.account_frozen } oops;")
    with pytest.raises(MalformedPolicy) as caught:
        compile_policy(broken, SCHEMA)
    assert line_of(broken, "oops") == caught.value.line
    assert caught.value.column is not None


def test_missing_semicolon_names_the_statement() -> None:
    """A final policy without its semicolon is reported where that policy starts."""
    broken = TEXT + '\n@id("extra")\nforbid (principal, action, resource)\n'
    with pytest.raises(MalformedPolicy) as caught:
        compile_policy(broken, SCHEMA)
    assert line_of(broken, '@id("extra")') == caught.value.line


def test_type_error_names_policy_and_line() -> None:
    """A reference to a context attribute the schema does not declare is located and named."""
    broken = TEXT.replace("when { context.halted };", "when { context.haltd };")
    with pytest.raises(MalformedPolicy) as caught:
        compile_policy(broken, SCHEMA)
    assert "halt" == caught.value.policy_id
    assert line_of(broken, '@id("halt")') == caught.value.line


def test_policy_without_id_refused() -> None:
    """Every policy must carry an @id: a refusal has to name its rule."""
    broken = TEXT + "\nforbid (principal, action, resource) when { context.halted };\n"
    with pytest.raises(MalformedPolicy) as caught:
        compile_policy(broken, SCHEMA)
    assert "@id" in str(caught.value)
    assert caught.value.line is not None


def test_bad_approval_annotation_refused() -> None:
    """An approval count that is not a small whole number is refused."""
    broken = TEXT.replace('@approvers("2")', '@approvers("two")')
    with pytest.raises(MalformedPolicy) as caught:
        compile_policy(broken, SCHEMA)
    assert "approvals.tier2" == caught.value.policy_id


def test_duplicate_id_refused() -> None:
    """Two policies with the same @id are refused."""
    broken = TEXT + '\n@id("halt")\nforbid (principal, action, resource) when { context.account_frozen };\n'
    with pytest.raises(MalformedPolicy):
        compile_policy(broken, SCHEMA)


def test_malformed_schema_refused() -> None:
    """A schema that does not parse is refused."""
    with pytest.raises(MalformedPolicy):
        compile_policy(TEXT, SCHEMA.replace("entity Account;", "entity Account"))


def test_hash_changes_with_text() -> None:
    """Any change to the policy text changes its hash."""
    changed = compile_policy(TEXT.replace("86400", "172800"), SCHEMA)
    assert default_policy().hash != changed.hash


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_fuzzed_policy_edits_compile_or_are_refused_cleanly(data: st.DataObject) -> None:
    """Random insertions and deletions in the policy text compile or raise MalformedPolicy, nothing else."""
    text = TEXT
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(text)))
        if data.draw(st.booleans()):
            insert = data.draw(st.text(alphabet='(){};"@=!&|<>.,: \nabcxyz0189', max_size=8))
            text = text[:position] + insert + text[position:]
        else:
            text = text[:position] + text[position + data.draw(st.integers(min_value=1, max_value=12)):]
    try:
        compile_policy(text, SCHEMA)
    except MalformedPolicy:
        pass


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_random_text_is_not_a_policy(text: str) -> None:
    """Arbitrary text is refused with MalformedPolicy (or, rarely, is a valid policy)."""
    try:
        compile_policy(text, SCHEMA)
    except MalformedPolicy:
        pass
