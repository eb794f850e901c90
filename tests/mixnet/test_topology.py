"""The stratified topology (docs/client.md §1): snapshots from signed descriptors, route
selection by layer plan, down nodes, soft avoidance, and the directory client against the
real API app."""

import random
import time
from collections import Counter

import httpx
import nacl.bindings as nb
import pytest

from fogcore import delays, vrf
from fogcore.mixnet.client import LoopbackNetwork
from fogcore.mixnet.descriptor import sign_descriptor
from fogcore.mixnet.directory_client import DirectoryClient, DirectoryError
from fogcore.mixnet.topology import (
    ENTRY,
    EXIT,
    GATEWAY,
    MIX,
    NoRoute,
    Topology,
    layer_plan,
)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def network():
    return LoopbackNetwork(seed=b"topology", layer_sizes=(3, 3, 3), gateways=2)


def test_layer_plans():
    assert layer_plan(2) == (ENTRY, GATEWAY)
    assert layer_plan(3) == (ENTRY, EXIT, GATEWAY)
    assert layer_plan(4) == (ENTRY, MIX, EXIT, GATEWAY)
    assert layer_plan(5) == (ENTRY, MIX, MIX, EXIT, GATEWAY)
    for bad in (0, 1, 6):
        with pytest.raises(ValueError):
            layer_plan(bad)


@pytest.mark.parametrize("hops", [2, 3, 4, 5])
def test_routes_follow_the_layers(network, hops):
    topo = network.topology(rng=random.Random(1))
    gateway = network.layer(GATEWAY)[1]
    for _ in range(50):
        route = topo.select_route(gateway, hops)
        assert [n.layer for n in route.nodes] == list(layer_plan(hops))
        assert route.gateway == gateway and route.first_hop == route.nodes[0].node_id
        assert len(set(route.node_ids)) == hops  # no node twice, even in the mix layer
        assert [i.node_id for i in route.infos] == list(route.node_ids)


def test_choice_is_spread_over_each_layer(network):
    topo = network.topology(rng=random.Random(7))
    counts = Counter(topo.select_route(network.layer(GATEWAY)[0]).nodes[1].node_id
                     for _ in range(900))
    assert set(counts) == set(network.layer(MIX))
    assert all(200 < c < 400 for c in counts.values())  # 300 expected each


def test_down_nodes_are_never_chosen_and_come_back():
    clock = Clock()
    net = LoopbackNetwork(seed=b"down", layer_sizes=(2, 2, 2), gateways=1)
    topo = net.topology(clock=clock)
    gateway = net.layer(GATEWAY)[0]
    dead, alive = net.layer(ENTRY)
    topo.mark_down(dead, seconds=30)
    assert not topo.is_usable(dead)
    assert all(topo.select_route(gateway).first_hop == alive for _ in range(40))
    clock.now += 31
    assert topo.is_usable(dead)
    # Every entry down: the layer is not emptied, the least suspect node still serves.
    topo.mark_down(alive)
    topo.mark_down(dead)
    topo.suspect(dead, 1.0)
    assert all(topo.select_route(gateway).first_hop == alive for _ in range(10))
    assert topo.fallbacks == 10
    topo.mark_up(dead)
    assert topo.select_route(gateway).first_hop == dead
    topo.mark_down(gateway)
    with pytest.raises(NoRoute, match="gateway"):
        topo.select_route(gateway)
    with pytest.raises(NoRoute):
        topo.select_route(net.layer(MIX)[0])  # not a gateway
    with pytest.raises(NoRoute):
        topo.select_route(b"\x00" * 32)


def test_avoid_is_a_preference():
    net = LoopbackNetwork(seed=b"avoid", layer_sizes=(2, 1, 2), gateways=1)
    topo = net.topology()
    gateway = net.layer(GATEWAY)[0]
    first = topo.select_route(gateway)
    for _ in range(20):
        again = topo.select_route(gateway, avoid=first.node_ids[:-1])
        assert again.nodes[0].node_id != first.nodes[0].node_id
        assert again.nodes[2].node_id != first.nodes[2].node_id
        assert again.nodes[1].node_id == first.nodes[1].node_id  # the only mix node


def test_refresh_verifies_every_entry():
    clock = Clock()
    net = LoopbackNetwork(seed=b"refresh", layer_sizes=(1, 1, 1), gateways=1)
    good = net.descriptors()
    forged = (good[0][0], bytes(64))
    other_format = sign_descriptor(b"\x05" * 32, routing_key=nb.crypto_scalarmult_base(
        b"\x06" * 32), layer="mix", format="kem", address="127.0.0.1:1")
    old = sign_descriptor(b"\x07" * 32, routing_key=nb.crypto_scalarmult_base(b"\x08" * 32),
                          layer="entry", format="sphinx", address="127.0.0.1:2",
                          published_at=int(clock.now) - 7200, lifetime=3600)
    topo = Topology(clock=clock)
    result = topo.refresh(good + [forged, other_format, old])
    assert result.accepted == 4 and result.skipped == 1
    assert result.rejected == {"InvalidSignature": 1, "StaleDescriptor": 1}
    # Down marks survive a refresh; the newest publication of a node wins.
    entry = net.layer(ENTRY)[0]
    topo.mark_down(entry)
    node = net.nodes[entry]
    newer = sign_descriptor(node.keys.identity_seed, routing_key=node.keys.routing_public,
                            layer="entry", format="sphinx", address="127.0.0.1:9999",
                            published_at=int(clock.now) + 10)
    topo.refresh(good + [(newer.encoded, newer.signature)])
    assert topo.node(entry).address == "127.0.0.1:9999" and not topo.is_usable(entry)
    assert len(topo) == 4 and entry in topo
    # Descriptors expire inside a snapshot too.
    clock.now += 4000
    assert topo.usable(MIX) == []


# ---------------------------------------------------------------- directory over HTTP


async def _with_directory(tmp_path, body):
    from fogcore.api import RateLimit, Settings, create_app
    from fogcore.api.auth import new_session_token, token_hash

    settings = Settings(database_url=f"sqlite://{tmp_path / 'dir.db'}",
                        bench_dir=str(tmp_path / "bench"), bench_suites=(),
                        bootstrap_admin=False, access_log=False, auth_cache_ttl=0.0,
                        read_cache_ttl=0.0, rate_limit=RateLimit(10_000, 10_000),
                        login_rate_limit=RateLimit(10_000, 10_000))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store = app.state.fog.store
        user = await store.users.create("operator", "unused: sessions only", "operator")
        token = new_session_token()
        await store.sessions.create(token_hash(token), user.id, time.time() + 600)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dir",
                                     headers={"authorization": f"Bearer {token}"}) as http:
            return await body(http)


def test_directory_client_against_the_api(run, tmp_path):
    net = LoopbackNetwork(seed=b"directory", layer_sizes=(2, 2, 2), gateways=1)

    async def body(http):
        for encoded, signature in net.descriptors():
            r = await http.post("/api/directory/nodes",
                                json={"descriptor": encoded.hex(), "signature": signature.hex()})
            assert r.status_code == 200, r.text
        directory = DirectoryClient(client=http, page_size=2)  # several pages
        listed = await directory.list_nodes()
        assert len(listed) == 7
        assert len(await directory.list_nodes(layer=GATEWAY)) == 1
        topo = Topology("sphinx")
        result = await directory.refresh(topo)
        assert result.accepted == 7 and not result.rejected
        assert topo.select_route(net.layer(GATEWAY)[0], 4).gateway == net.layer(GATEWAY)[0]
        assert (await directory.refresh(Topology("kem"))).accepted == 0
        # Epoch proofs: none yet, then the published one.
        node_id = net.layer(ENTRY)[0]
        assert await directory.epoch_proof(node_id, 5) is None
        proof = vrf.prove(delays.vrf_secret_key(net.nodes[node_id].keys.identity_seed), delays.epoch_alpha(5))
        r = await http.post(f"/api/betanet/vrf/{node_id.hex()}/5", json={"proof": proof.hex()})
        assert r.status_code == 201, r.text
        assert await directory.epoch_proof(node_id, 5) == proof
        await directory.aclose()  # a shared client is left open
        assert (await http.get("/api/directory/nodes")).status_code == 200

    run(_with_directory(tmp_path, body))


def test_directory_unreachable(run):
    async def body():
        async with DirectoryClient("http://127.0.0.1:9", timeout=1.0) as directory:
            with pytest.raises(DirectoryError):
                await directory.list_nodes()

    run(body())


def test_suspicion_steers_choice_never_empties_a_layer_and_decays():
    clock = Clock()
    net = LoopbackNetwork(seed=b"suspect", layer_sizes=(2, 2, 2), gateways=1)
    topo = net.topology(clock=clock, rng=random.Random(3))
    topo.half_life, topo.suspect_at = 10.0, 3.0
    gateway = net.layer(GATEWAY)[0]
    a, b = net.layer(ENTRY)
    topo.suspect(a, 6.0)
    assert topo.is_suspect(a) and topo.suspicion(a) == 6.0
    assert all(topo.select_route(gateway).first_hop == b for _ in range(20))
    # Both suspect: the least suspect one carries the traffic, never NoRoute.
    topo.suspect(b, 9.0)
    assert all(topo.select_route(gateway).first_hop == a for _ in range(20))
    assert topo.fallbacks == 20
    # An acknowledgement over b clears it.
    topo.trust(b)
    assert all(topo.select_route(gateway).first_hop == b for _ in range(20))
    # Scores halve every half-life: after 11 s, a (6 → < 3) is used again.
    clock.now += 11
    assert not topo.is_suspect(a)
    assert {topo.select_route(gateway).first_hop for _ in range(40)} == {a, b}
    # The cap bounds how long a node can stay avoided.
    topo.max_score = 12.0
    topo.suspect(a, 1000.0)
    assert topo.suspicion(a) == 12.0
    clock.now += 21
    assert not topo.is_suspect(a)


def test_refresh_drops_unlisted_nodes_but_never_empties_a_layer():
    clock = Clock()
    net = LoopbackNetwork(seed=b"listing", layer_sizes=(2, 2, 2), gateways=1)
    topo = net.topology(clock=clock)
    gateway = net.layer(GATEWAY)[0]
    a, b = net.layer(ENTRY)
    listing = {d[0]: d for d in net.descriptors()}

    def without(*node_ids):
        return [entry for entry in net.descriptors()
                if not any(nid in entry[0] for nid in node_ids)]

    assert len(listing) == 7
    # The directory leaves `a` out: it is no longer chosen, though its copy is valid.
    result = topo.refresh(without(a))
    assert result.accepted == 6 and result.retained == 0 and a not in topo
    assert all(topo.select_route(gateway).first_hop == b for _ in range(20))
    # Both entries left out: the last known ones stay, so the client is not stranded.
    topo.suspect(b, 5.0)
    result = topo.refresh(without(a, b))
    assert result.accepted == 5 and result.retained == 1 and b in topo and a not in topo
    assert topo.select_route(gateway).first_hop == b
    # Listed again: back in the choice, with a clean score.
    result = topo.refresh(net.descriptors())
    assert result.accepted == 7 and result.retained == 0
    assert topo.suspicion(b) == 0.0
    assert {topo.select_route(gateway).first_hop for _ in range(40)} == {a, b}
    # A layer that has no node at all is the only NoRoute.
    empty = LoopbackNetwork(seed=b"empty", layer_sizes=(0, 1, 1), gateways=1)
    with pytest.raises(NoRoute, match="entry"):
        empty.topology().select_route(empty.layer(GATEWAY)[0])
