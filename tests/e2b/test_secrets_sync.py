"""E2B's Secrets API through the sync SDK: values go in and never come out;
a header transform naming a secret is accepted as its injection."""

import pytest
from e2b import (
    Sandbox,
    SandboxException,
    Secret,
    SecretException,
    SecretNotFoundException,
)

from conftest import TEMPLATE


def test_secrets_are_written_never_read(run_id):
    name = f"sdk-{run_id}"
    created = Secret.create(name.upper(), "sk-live-never-shown")
    try:
        assert (created.name, created.version, created.metadata) == (name, 1, {})
        assert created.secret_id == f"sec_{name}"
        with pytest.raises(SecretException):
            Secret.create(name, "again")

        info = Secret.get_info(created.secret_id)
        assert (info.name, info.version) == (name, 1)
        assert Secret.exists(name)

        updated = Secret.update(name, "sk-live-rotated")
        assert updated.version == 2 and updated.created_at == created.created_at

        pages = Secret.list(limit=100)
        listed = []
        while pages.has_next:
            listed += pages.next_items()
        assert name in [s.name for s in listed]
        assert "never-shown" not in repr(listed) and "rotated" not in repr(listed)

        # The SDK's placeholder in a header transform names the secret.
        s = Sandbox.create(
            TEMPLATE,
            timeout=60,
            metadata={"run": run_id, "case": "secrets"},
            network={
                "allow_out": ["api.example.com"],
                "rules": {
                    "api.example.com": [
                        {"transform": {"headers": {"Authorization": f"Bearer {Secret.fill(name)}"}}}
                    ]
                },
            },
        )
        s.kill()
        with pytest.raises(SandboxException):
            Sandbox.create(
                TEMPLATE,
                timeout=60,
                network={
                    "rules": {
                        "api.example.com": [
                            {"transform": {"headers": {"X-Key": Secret.fill("no-such-secret")}}}
                        ]
                    }
                },
            )
    finally:
        assert Secret.destroy(name) is True
    assert Secret.destroy(name) is False
    assert not Secret.exists(name)
    with pytest.raises(SecretNotFoundException):
        Secret.get_info(name)
