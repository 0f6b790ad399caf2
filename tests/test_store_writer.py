"""Group commit: posted work rides along with the next awaited commit."""

import asyncio

from scb_agent.store_writer import StoreWriter
from scb_core.store import Store


def audit_job(detail: str):
    return lambda store: store.audit("stage", "agent", 1.0, detail=detail)


def details(store: Store) -> list[str]:
    return [row["detail"] for row in reversed(store.list_audit(limit=1000))]


async def test_posted_jobs_and_the_next_call_share_one_commit_in_order(tmp_path):
    writer = StoreWriter(tmp_path / "scb.db")
    try:
        for n in range(5):
            writer.post(audit_job(f"posted {n}"))
        seen = await writer.call(details)

        assert seen == [f"posted {n}" for n in range(5)]
        assert writer.commits == 1
    finally:
        writer.close()


async def test_posted_jobs_commit_on_their_own_when_no_call_follows(tmp_path):
    writer = StoreWriter(tmp_path / "scb.db")
    try:
        writer.post(audit_job("alone"))
        for _ in range(500):  # a generous bound, not a timing assertion
            if writer.commits:
                break
            await asyncio.sleep(0.01)

        assert writer.commits == 1
        reader = Store(tmp_path / "scb.db")
        assert details(reader) == ["alone"]
        reader.close()
    finally:
        writer.close()


def test_close_commits_what_was_posted_on_a_loop_that_ended(tmp_path):
    writer = StoreWriter(tmp_path / "scb.db")

    async def post_and_leave():
        writer.post(audit_job("last words"))

    asyncio.run(post_and_leave())
    writer.close()

    reader = Store(tmp_path / "scb.db")
    assert details(reader) == ["last words"]
    reader.close()


async def test_a_failing_posted_job_leaves_its_neighbours_committed(tmp_path):
    writer = StoreWriter(tmp_path / "scb.db")

    def broken(store):
        raise ValueError("broken job")

    try:
        writer.post(audit_job("before"))
        writer.post(broken)
        writer.post(audit_job("after"))
        assert await writer.call(details) == ["before", "after"]
    finally:
        writer.close()
