"""Duplicate keys in JSON bodies: 422 on every route that takes a body; both backends."""

import pytest

from fogcore.api.errors import ApiError
from fogcore.api.validation import check_unique_keys

from .conftest import PASSWORD

JSON = {"content-type": "application/json"}


def test_duplicate_keys_refused(api):
    async def body(a):
        await a.user("frank", "viewer")
        login = '{"username": "nobody", "username": "frank", "password": "' + PASSWORD + '"}'
        r = await a.client.post("/api/auth/login", content=login, headers=JSON)
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["code"] == "validation_failed"
        assert error["fields"] == [{"field": "username", "message":
                                    "the key `username` appears more than once in one object"}]
        admin = await a.headers("admin")
        r = await a.client.post("/api/keys", content='{"name": "x", "name": "y"}',
                                headers={**admin, **JSON})
        assert r.status_code == 422
        assert await a.store.api_keys.list(include_inactive=True) == []
        # The same bodies without the duplicate are accepted.
        r = await a.client.post("/api/keys", content='{"name": "y"}', headers={**admin, **JSON})
        assert r.status_code == 201 and r.json()["api_key"]["name"] == "y"

    api(body)


def test_deep_nesting_is_refused_not_a_crash():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ApiError) as caught:
        check_unique_keys(deep)
    assert caught.value.status == 400 and caught.value.code == "malformed_json"


@pytest.mark.parametrize("document", [
    b'{"a": 1, "a": 1}',
    b'{"a": {"b": 1, "c": 2, "b": 3}}',
    b'[{"ok": 1}, {"x": 1, "x": 2}]',
    b'{"\\u0061": 1, "a": 2}',  # the same key, escaped once
])
def test_check_unique_keys_at_any_depth(document):
    with pytest.raises(ApiError) as caught:
        check_unique_keys(document)
    assert caught.value.status == 422


@pytest.mark.parametrize("document", [b'{"a": 1, "b": {"a": 1}}', b'[{"a": 1}, {"a": 2}]',
                                      b'"a"', b"{}"])
def test_check_unique_keys_accepts_distinct_keys(document):
    check_unique_keys(document)
