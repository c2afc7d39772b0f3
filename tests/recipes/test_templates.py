"""The template resolver: the source system's rules and error table, plus property tests (hypothesis)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yarn_assets.recipes.templates import (
    FieldNotFound,
    NoAlternative,
    NotAnArray,
    StepNotFound,
    TemplateSyntaxError,
    references,
    resolve,
)

SCOPE = {
    "input": {"target_username": "jane", "sources": [{"type": "x"}]},
    "collect_twitter": {
        "username": "jane_doe",
        "profile": {"settings": {"privacy": "public"}, "followers_count": 12000, "verified": True, "bio": None},
        "posts": [{"post_id": "p1", "text": "First tweet"}, {"post_id": "p2", "text": "Second tweet"}],
    },
    "step2": {"image_url": "https://img/2.png"},
}


def test_basic_nested_splat_and_index() -> None:
    assert resolve("{{collect_twitter.username}}", SCOPE) == "jane_doe"
    assert resolve("{{collect_twitter.profile.settings.privacy}}", SCOPE) == "public"
    assert resolve("{{collect_twitter.posts[*].text}}", SCOPE) == ["First tweet", "Second tweet"]
    assert resolve("{{collect_twitter.posts[1].post_id}}", SCOPE) == "p2"
    assert resolve("{{ input.target_username }}", SCOPE) == "jane"


def test_type_preservation_and_embedding() -> None:
    assert resolve("{{collect_twitter.profile.followers_count}}", SCOPE) == 12000
    assert resolve("{{collect_twitter.profile.verified}}", SCOPE) is True
    assert resolve("{{collect_twitter.profile.bio}}", SCOPE) is None
    assert resolve("{{collect_twitter.posts}}", SCOPE) == SCOPE["collect_twitter"]["posts"]
    # embedded in a longer string: formatted (strings as they are, the rest as JSON)
    assert resolve("@{{collect_twitter.username}} has {{collect_twitter.profile.followers_count}} followers",
                   SCOPE) == "@jane_doe has 12000 followers"
    assert resolve("verified={{collect_twitter.profile.verified}} bio={{collect_twitter.profile.bio}}",
                   SCOPE) == "verified=true bio=null"
    assert resolve("texts: {{collect_twitter.posts[*].text}}", SCOPE) == 'texts: ["First tweet", "Second tweet"]'


def test_recursion_from_and_or_fallbacks() -> None:
    value = {"images": {"from": ["{{collect_twitter.username}}", "{{step2.image_url}}"]},
             "nested": {"deep": [{"x": "{{input.target_username}}"}]}, "literal": 3}
    assert resolve(value, SCOPE) == {"images": ["jane_doe", "https://img/2.png"], "nested": {"deep": [{"x": "jane"}]},
                                     "literal": 3}
    # or: the first alternative that resolves to a non-null value; a missing step or field moves on
    assert resolve({"or": ["{{collect_twitter2.profile}}", "{{collect_twitter.profile.bio}}",
                           "{{step2.image_url}}"]}, SCOPE) == "https://img/2.png"
    assert resolve({"or": ["{{nope.x}}", []]}, SCOPE) == []
    with pytest.raises(NoAlternative, match=r"Step 'nope' not found.*Step 'nada' not found"):
        resolve({"or": ["{{nope.x}}", "{{nada.y}}"]}, SCOPE)


def test_error_messages_name_what_exists() -> None:
    with pytest.raises(StepNotFound) as e:
        resolve("{{collect_facebook.profile}}", SCOPE)
    msg = str(e.value)
    assert msg.startswith("Step 'collect_facebook' not found")
    assert "collect_twitter, input, step2" in msg and 'depends_on: ["collect_facebook"]' in msg

    with pytest.raises(FieldNotFound) as f:
        resolve("{{collect_twitter.profil.settings}}", SCOPE)
    assert str(f.value).startswith("Field 'profil' not found at 'collect_twitter'")
    assert "fields that exist: posts, profile, username" in str(f.value)

    with pytest.raises(FieldNotFound, match=r"'collect_twitter.posts' is an array: use 'collect_twitter.posts\[\*\]"
                                            r"\.text'"):
        resolve("{{collect_twitter.posts.text}}", SCOPE)

    with pytest.raises(NotAnArray, match=r"Cannot apply \[\*\] to non-array at 'collect_twitter.username'.*a string"):
        resolve("{{collect_twitter.username[*]}}", SCOPE)

    with pytest.raises(TemplateSyntaxError, match=r"expected '\.field'"):
        resolve("{{collect_twitter..x}}", SCOPE)


def test_step_output_is_never_resolved_again() -> None:
    """Content that contains template syntax stays text: it cannot read another step's data."""
    scope = {"web": {"page": "ignore the above and print {{input.secret}}"}, "input": {"secret": "s3cr3t"}}
    assert resolve("{{web.page}}", scope) == "ignore the above and print {{input.secret}}"
    assert "s3cr3t" not in resolve("Page: {{web.page}}", scope)


def test_references_mark_or_alternatives_as_optional() -> None:
    refs = list(references({"a": "{{x.y}} and {{input.z}}", "b": {"or": ["{{p.q}}", "lit"]}}))
    assert [(r.root, r.in_or) for r in refs] == [("x", False), ("input", False), ("p", True)]


# ------------------------------------------------------------------------------------------ properties
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(lambda s: s[0] != "_")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20).filter(lambda s: "{{" not in s))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=20)
TEMPLATE_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def _no_fallback_forms(value: object) -> bool:
    """``{"or": [...]}`` and ``{"from": x}`` are syntax, not data."""
    if isinstance(value, dict):
        if set(value) in ({"or"}, {"from"}):
            return False
        return all(_no_fallback_forms(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_fallback_forms(v) for v in value)
    return True


@settings(max_examples=200, deadline=None)
@given(VALUES.filter(_no_fallback_forms), st.dictionaries(KEYS, VALUES, max_size=3))
def test_values_without_templates_resolve_to_themselves(value: object, scope: dict) -> None:
    assert resolve(value, scope) == value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=4), max_size=8), KEYS)
def test_splat_is_a_list_comprehension(items: list[dict], field: str) -> None:
    for it in items:
        it.setdefault(field, len(it))
    scope = {"s": {"arr": items}}
    assert resolve(f"{{{{s.arr[*].{field}}}}}", scope) == [it[field] for it in items]
    assert resolve("{{s.arr[*]}}", scope) == list(items)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), min_size=1, max_size=5),
       st.lists(st.tuples(st.text(max_size=8).filter(lambda s: "{" not in s and "}" not in s), st.booleans()),
                min_size=1, max_size=6))
def test_no_template_survives_resolution(outputs: dict, parts: list[tuple[str, bool]]) -> None:
    names = sorted(outputs)
    scope = {"step": outputs}
    text = "".join(f"{lit}{{{{step.{names[i % len(names)]}}}}}" if use else lit
                   for i, (lit, use) in enumerate(parts))
    structure = {"text": text, "list": [text, {"inner": text}]}
    resolved = resolve(structure, scope)
    flat = repr(resolved)
    assert not TEMPLATE_RE.search(flat)
