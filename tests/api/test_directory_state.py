"""Node states in the directory: listings leave out unreachable and draining nodes unless
asked, the signed leave route, and the prober running in the app's lifespan."""

from __future__ import annotations

import asyncio
import os
import time

import nacl.bindings as nb

from fogcore.mixnet.control import CONTROL_FRAME_SIZE, STATE_UP, ControlSigner, decode_control
from fogcore.mixnet.descriptor import sign_descriptor

ROUTING = nb.crypto_scalarmult_base(bytes(range(32, 64)))


class FakeNode:
    """A loopback server answering PROBEs with acks signed by `seed` while `answering`."""

    def __init__(self, seed: bytes):
        self.signer = ControlSigner(seed)
        self.answering = True
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        try:
            while True:
                frame = await reader.readexactly(CONTROL_FRAME_SIZE)
                if self.answering:
                    writer.write(self.signer.ack(decode_control(frame[4:]).nonce, STATE_UP))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def descriptor(seed: bytes, address: str = "10.0.0.1:9000", published_at=None, **fields):
    values = dict(routing_key=ROUTING, layer="mix", format="sphinx", address=address)
    values.update(fields)
    if published_at is not None:
        values["published_at"] = published_at
    return sign_descriptor(seed, **values)


async def register(a, headers, seed: bytes, **fields) -> dict:
    d = descriptor(seed, **fields)
    r = await a.client.post("/api/directory/nodes", headers=headers,
                            json={"descriptor": d.encoded.hex(), "signature": d.signature.hex()})
    assert r.status_code == 200, r.text
    return r.json()


async def leave(a, headers, node_id: str, at: int, signature: bytes):
    return await a.client.post(f"/api/directory/nodes/{node_id}/leave", headers=headers,
                               json={"at": at, "signature": signature.hex()})


async def listed(a, **params) -> list[str]:
    r = await a.client.get("/api/directory/nodes", params=params)
    assert r.status_code == 200, r.text
    return [n["node_id"] for n in r.json()["nodes"]]


def test_listing_leaves_out_unreachable_and_draining(api):
    async def body(a):
        h = await a.headers("operator")
        seeds = [bytes([i]) * 32 for i in (1, 2, 3, 4)]
        nodes = [await register(a, h, seed) for seed in seeds]
        assert all(n["state"] == "unknown" and n["state_since"] > 0 for n in nodes)
        ids = [n["node_id"] for n in nodes]
        up, gone, leaving, new = ids
        await a.store.directory.set_state(up, "up")
        await a.store.directory.set_state(gone, "unreachable")
        at = int(time.time())
        r = await leave(a, h, leaving, at, ControlSigner(seeds[2]).leave(at))
        assert r.status_code == 200 and r.json()["state"] == "draining"

        assert sorted(await listed(a)) == sorted([up, new])
        assert sorted(await listed(a, state="listed")) == sorted([up, new])
        assert sorted(await listed(a, state="all")) == sorted(ids)
        assert await listed(a, state="unreachable") == [gone]
        assert await listed(a, state="draining") == [leaving]
        r = await a.client.get("/api/directory/nodes", params={"state": "asleep"})
        assert r.status_code == 422
        entries = (await a.client.get("/api/directory/nodes?state=all")).json()["nodes"]
        assert {n["node_id"]: n["state"] for n in entries} == {
            up: "up", gone: "unreachable", leaving: "draining", new: "unknown"}
        one = (await a.client.get(f"/api/directory/nodes/{gone}")).json()
        assert one["state"] == "unreachable" and one["state_since"] > 0

    api(body)


def test_leave_route_checks_the_signature_and_time(api):
    async def body(a):
        h = await a.headers("operator")
        seed = bytes([7]) * 32
        node = await register(a, h, seed)
        node_id, signer = node["node_id"], ControlSigner(seed)
        now = int(time.time())

        r = await leave(a, h, node_id, now, ControlSigner(os.urandom(32)).leave(now))
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
        r = await leave(a, h, node_id, now + 1, signer.leave(now))  # signed another time
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
        r = await leave(a, h, node_id, now, signer.leave(now)[:63])
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
        r = await leave(a, h, node_id, now - 600, signer.leave(now - 600))
        assert r.status_code == 422 and r.json()["error"]["code"] == "stale_leave"
        r = await leave(a, h, node_id, now + 600, signer.leave(now + 600))
        assert r.status_code == 422 and r.json()["error"]["code"] == "future_leave"
        r = await a.client.post(f"/api/directory/nodes/{node_id}/leave", headers=h,
                                json={"at": now, "signature": "zz"})
        assert r.status_code == 422
        assert (await a.store.directory.get(node_id)).state == "unknown"

        unknown = ControlSigner(bytes([8]) * 32)
        r = await leave(a, h, unknown.node_id.hex(), now, unknown.leave(now))
        assert r.status_code == 404
        r = await leave(a, await a.headers("viewer"), node_id, now, signer.leave(now))
        assert r.status_code == 403
        r = await leave(a, {}, node_id, now, signer.leave(now))
        assert r.status_code == 401

        first = await leave(a, h, node_id, now, signer.leave(now))
        assert first.status_code == 200 and first.json()["state"] == "draining"
        again = await leave(a, h, node_id, now, signer.leave(now))  # idempotent
        assert again.status_code == 200 and again.json() == first.json()

        # A newer descriptor (published after the leave) ends it.
        back = await register(a, h, seed, published_at=now + 2)
        assert back["state"] == "unknown"
        assert node_id in await listed(a)
        r = await leave(a, h, node_id, now, signer.leave(now))  # superseded
        assert r.status_code == 409

        audit = await a.store.audit.list(action="directory.leave")
        assert len(audit) == 2 and audit[0].target == node_id

    api(body)


def test_leave_route_in_openapi(api):
    async def body(a):
        doc = (await a.client.get("/openapi.json")).json()
        op = doc["paths"]["/api/directory/nodes/{node_id}/leave"]["post"]
        assert "operator" in op["description"] and op["security"] == [{"bearer": []}]
        assert {"200", "401", "403", "404", "409", "422"} <= set(op["responses"])
        schemas = doc["components"]["schemas"]
        assert {"at", "signature"} <= set(schemas["NodeLeave"]["properties"])
        assert {"state", "state_since"} <= set(schemas["NodeOut"]["required"])
        params = doc["paths"]["/api/directory/nodes"]["get"]["parameters"]
        assert "state" in {p["name"] for p in params}

    api(body)


def test_prober_in_the_lifespan_marks_a_silent_node(api):
    async def body(a):
        assert a.app.state.prober is not None
        h = await a.headers("operator")
        fake = FakeNode(bytes([9]) * 32)
        await fake.start()
        try:
            node = await register(a, h, bytes([9]) * 32, address=f"127.0.0.1:{fake.port}")
            far = await register(a, h, bytes([10]) * 32)  # 10.0.0.1: never probed

            async def wait(state: str) -> None:
                deadline = time.monotonic() + 10
                while (await a.store.directory.get(node["node_id"])).state != state:
                    assert time.monotonic() < deadline, f"never {state}"
                    await asyncio.sleep(0.02)

            await wait("up")
            fake.answering = False
            await wait("unreachable")
            assert node["node_id"] not in await listed(a)
            assert far["node_id"] in await listed(a)
            fake.answering = True
            await wait("up")
            assert node["node_id"] in await listed(a)
            assert (await a.store.directory.get(far["node_id"])).state == "unknown"
            metrics = (await a.client.get("/metrics")).text
            for name in ("fogcore_directory_probes_sent_total",
                         "fogcore_directory_probe_acks_total",
                         'fogcore_directory_probe_failures_total{reason="address"} 1.0',
                         'fogcore_directory_nodes{state="up"} 1.0'):
                assert name in metrics
        finally:
            await fake.stop()

    api(body, directory_probe_interval_s=0.05, directory_unreachable_after_s=0.4)


def test_prober_is_off_by_default(api):
    async def body(a):
        assert a.app.state.prober is None

    api(body)
