"""Sandbox listing through the sync SDK: order, started_after, template and
pages that hold while a sandbox pauses between them."""

import datetime

from e2b import Sandbox, SandboxQuery, SandboxState

from conftest import TEMPLATE


def walk(paginator):
    """Every sandbox id of a paginator, page by page."""
    ids = []
    while paginator.has_next:
        ids += [x.sandbox_id for x in paginator.next_items()]
    return ids


def test_order_started_after_template_and_stable_pages(run_id):
    meta = {"run": run_id, "case": "list"}
    made = []
    try:
        for _ in range(3):
            made.append(Sandbox.create(TEMPLATE, timeout=300, metadata=meta))
        first, second, third = (s.sandbox_id for s in made)
        query = SandboxQuery(metadata=meta)

        # Newest first by default; `order` over the whole list.
        assert walk(Sandbox.list(query=query)) == [third, second, first]
        assert walk(Sandbox.list(query=query, order="asc")) == [first, second, third]

        # `started_after` is inclusive; the SDK sends it with its offset.
        started = Sandbox.get_info(second).started_at
        after = SandboxQuery(metadata=meta, started_after=started)
        assert walk(Sandbox.list(query=after, order="asc")) == [second, third]
        local = started.astimezone(datetime.timezone(datetime.timedelta(hours=-7)))
        after = SandboxQuery(metadata=meta, started_after=local + datetime.timedelta(microseconds=1))
        assert walk(Sandbox.list(query=after, order="asc")) == [third]

        # `template`: the Warren template the sandbox runs on.
        on_template = SandboxQuery(metadata=meta, template=TEMPLATE)
        assert walk(Sandbox.list(query=on_template, order="asc")) == [first, second, third]
        elsewhere = SandboxQuery(metadata=meta, template="no-such-template")
        assert walk(Sandbox.list(query=elsewhere)) == []

        # One page at a time: the second sandbox pauses after the first page
        # and is listed once, in its place.
        pages = Sandbox.list(query=query, limit=1, order="asc")
        seen = [x.sandbox_id for x in pages.next_items()]
        assert seen == [first] and pages.has_next
        assert made[1].pause() is True
        rest = []
        while pages.has_next:
            page = pages.next_items()
            assert len(page) <= 1
            rest += page
        assert [x.sandbox_id for x in rest] == [second, third]
        assert rest[0].state == SandboxState.PAUSED
    finally:
        for s in made:
            s.kill()
    assert walk(Sandbox.list(query=SandboxQuery(metadata=meta))) == []
