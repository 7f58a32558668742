"""The double-submit CSRF token's rules."""

from __future__ import annotations

from agent_desk_svc.ui.session import csrf_matches, new_csrf_token, usable_csrf_cookie


def test_a_submitted_token_must_equal_the_cookie() -> None:
    token = new_csrf_token()
    assert csrf_matches(token, token)
    assert not csrf_matches(token, new_csrf_token())
    assert not csrf_matches(token, token[:-1])
    assert not csrf_matches(None, token) and not csrf_matches(token, None)
    assert not csrf_matches("", "")  # no cookie and an empty field are not a match
    assert not csrf_matches("x" * 200, "x" * 200)  # longer than any token we issue


def test_tokens_are_unguessable_and_cookie_safe() -> None:
    tokens = {new_csrf_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 40 and usable_csrf_cookie(t) == t for t in tokens)
    assert usable_csrf_cookie(None) is None
    assert usable_csrf_cookie("short") is None
    assert usable_csrf_cookie("has spaces and ; semicolons in it!") is None
