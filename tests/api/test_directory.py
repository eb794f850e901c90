"""Node descriptors (signature, freshness, key sizes) and the directory and VRF routes."""

import os
import struct
import time

import nacl.bindings as nb
import pytest

from fogcore import delays, vrf
from fogcore.mixnet.descriptor import (
    FutureDescriptor,
    InvalidKey,
    InvalidSignature,
    MalformedDescriptor,
    StaleDescriptor,
    decode_descriptor,
    encode_descriptor,
    sign_descriptor,
    verify_descriptor,
)

SEED = bytes(range(32))
ROUTING = nb.crypto_scalarmult_base(bytes(range(32, 64)))
# docs/vrf-delays.md §1.1: the VRF public key derived from SEED
VRF_KEY = bytes.fromhex("57c1315d37dd65af8c51ad2683eb444ed85530a50bad5e1552549ce820b8f508")


def make(seed=SEED, **fields):
    values = dict(routing_key=ROUTING, layer="mix", format="sphinx", address="10.0.0.1:9000")
    values.update(fields)
    return sign_descriptor(seed, **values)


def test_round_trip_and_layout():
    d = make(published_at=1_700_000_000, lifetime=600)
    identity = nb.crypto_sign_seed_keypair(SEED)[0]
    assert d.identity_key == identity and d.node_id == identity.hex()
    # docs/directory.md §2: magic, version 2, layer, format, then length-prefixed keys.
    assert d.encoded[:8] == b"FOGD\x02\x01\x01\x20"
    assert d.encoded[8:40] == identity and d.encoded[40] == 32
    assert d.encoded[41:73] == ROUTING and d.encoded[73] == 32
    assert d.encoded[74:106] == VRF_KEY == d.vrf_key == delays.vrf_public_key(SEED)
    assert struct.unpack(">QQ", d.encoded[106:122]) == (1_700_000_000, 1_700_000_600)
    assert d.encoded[122] == len("10.0.0.1:9000") and len(d.encoded) == 123 + 13
    assert d.encoded[123:] == b"10.0.0.1:9000"
    got = verify_descriptor(d.encoded, d.signature, now=1_700_000_100)
    assert got == d and got.vrf_key == VRF_KEY
    assert got.info()["layer_name"] == "mix" and got.info()["vrf_key"] == VRF_KEY.hex()
    assert got.info()["version"] == 2


def test_vrf_key_is_the_derived_one_and_signed():
    d = make(published_at=1_700_000_000)
    assert d.vrf_key != d.identity_key
    # an explicit key is published as given; the signature covers it
    other = delays.vrf_public_key(b"\x09" * 32)
    e = make(published_at=1_700_000_000, vrf_key=other)
    assert decode_descriptor(e.encoded).vrf_key == other
    forged = e.encoded[:74] + VRF_KEY + e.encoded[106:]
    with pytest.raises(InvalidSignature):
        verify_descriptor(forged, e.signature, now=1_700_000_100)


def test_vrf_key_checks():
    identity = nb.crypto_sign_seed_keypair(SEED)[0]
    with pytest.raises(InvalidKey):
        make(vrf_key=identity)  # the key reuse version 2 exists to end
    with pytest.raises(InvalidKey):
        make(vrf_key=VRF_KEY[:31])
    with pytest.raises(InvalidKey):
        make(vrf_key=bytes([1] + [0] * 31))  # the identity point: small order
    d = make(published_at=1_700_000_000)
    same = d.encoded[:74] + identity + d.encoded[106:]
    with pytest.raises(InvalidKey):
        decode_descriptor(same)


def test_version_1_is_refused():
    d = make(published_at=1_700_000_000)
    # version 1: no VRF key field, otherwise the same layout
    v1 = b"FOGD\x01" + d.encoded[5:73] + d.encoded[106:]
    signature = nb.crypto_sign(v1, nb.crypto_sign_seed_keypair(SEED)[1])[:64]
    with pytest.raises(MalformedDescriptor, match="version 1"):
        verify_descriptor(v1, signature, now=1_700_000_100)


def test_tampering_and_wrong_signer_are_refused():
    d = make(published_at=1_700_000_000)
    for i in (5, 50, 80, len(d.encoded) - 1):
        forged = bytearray(d.encoded)
        forged[i] ^= 1
        with pytest.raises((InvalidSignature, MalformedDescriptor, InvalidKey)):
            verify_descriptor(bytes(forged), d.signature, now=1_700_000_100)
    other = make(seed=os.urandom(32), published_at=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify_descriptor(d.encoded, other.signature, now=1_700_000_100)
    with pytest.raises(InvalidSignature):
        verify_descriptor(d.encoded, d.signature[:63], now=1_700_000_100)


def test_freshness():
    d = make(published_at=1_700_000_000, lifetime=600)
    with pytest.raises(StaleDescriptor):
        verify_descriptor(d.encoded, d.signature, now=1_700_000_600)
    with pytest.raises(FutureDescriptor):
        verify_descriptor(d.encoded, d.signature, now=1_700_000_000 - 301)
    verify_descriptor(d.encoded, d.signature, now=1_700_000_000 - 299)  # within clock skew
    long_lived = make(published_at=1_700_000_000, lifetime=7 * 24 * 3600)
    with pytest.raises(MalformedDescriptor):
        verify_descriptor(long_lived.encoded, long_lived.signature, now=1_700_000_001,
                          max_lifetime=3600)


def test_key_sizes_and_bad_points():
    with pytest.raises(InvalidKey):
        make(routing_key=ROUTING[:31])
    with pytest.raises(InvalidKey):
        make(routing_key=bytes(32))  # low order: everyone would share an all-zero secret
    with pytest.raises(InvalidKey):
        make(seed=SEED[:16])
    # A descriptor whose identity key field is 31 bytes long: parseable, refused as a key.
    d = make(published_at=1_700_000_000)
    short = d.encoded[:7] + b"\x1f" + d.encoded[8:39] + d.encoded[40:]
    with pytest.raises(InvalidKey):
        decode_descriptor(short)
    small_order = bytes([1] + [0] * 31)  # the identity point: accepts forged signatures
    with pytest.raises(InvalidKey):
        encode_descriptor(identity_key=small_order, routing_key=ROUTING, vrf_key=VRF_KEY,
                          layer=0, format="kem", address="h:1", published_at=1, expires_at=2)


@pytest.mark.parametrize("address", ["", "host", "host:0", "host:65536", "host:08",
                                     "bad host:1", "[::zz]:1", "a" * 300 + ":1"])
def test_bad_addresses(address):
    with pytest.raises(MalformedDescriptor):
        make(address=address)


def test_truncated_and_trailing_bytes():
    d = make(published_at=1_700_000_000)
    for data in (d.encoded[:-1], d.encoded + b"\x00", b"", b"XXXX" + d.encoded[4:]):
        with pytest.raises(MalformedDescriptor):
            decode_descriptor(data)


def _register_body(d):
    return {"descriptor": d.encoded.hex(), "signature": d.signature.hex()}


def test_register_list_filter_refresh(api):
    async def body(a):
        operator = await a.headers("operator")
        seeds = [bytes([i]) * 32 for i in range(1, 7)]
        layers = ["entry", "mix", "exit", "mix", "gateway", "mix"]
        formats = ["sphinx", "kem", "sphinx", "sphinx", "kem", "kem"]
        for seed, layer, fmt in zip(seeds, layers, formats, strict=True):
            d = make(seed=seed, layer=layer, format=fmt)
            r = await a.client.post("/api/directory/nodes", json=_register_body(d),
                                    headers=operator)
            assert r.status_code == 200, r.text
            assert r.json()["node_id"] == d.node_id
        nodes = (await a.client.get("/api/directory/nodes")).json()
        assert len(nodes["nodes"]) == 6 and nodes["next_offset"] is None
        assert [n["layer"] for n in nodes["nodes"]] == sorted(n["layer"] for n in nodes["nodes"])
        mixes = (await a.client.get("/api/directory/nodes?layer=1")).json()["nodes"]
        assert len(mixes) == 3
        kem_mixes = (await a.client.get("/api/directory/nodes?layer=1&format=kem")).json()
        assert len(kem_mixes["nodes"]) == 2
        page = (await a.client.get("/api/directory/nodes?limit=4")).json()
        assert len(page["nodes"]) == 4 and page["next_offset"] == 4
        rest = (await a.client.get("/api/directory/nodes?limit=4&offset=4")).json()
        assert len(rest["nodes"]) == 2
        # The stored bytes verify again without trusting the directory.
        one = (await a.client.get(f"/api/directory/nodes/{nodes['nodes'][0]['node_id']}")).json()
        verify_descriptor(bytes.fromhex(one["descriptor"]), bytes.fromhex(one["signature"]))
        # Every listed descriptor is version 2 and carries its node's derived VRF key.
        by_id = {make(seed=seed).node_id: seed for seed in seeds}
        for entry in nodes["nodes"]:
            listed = verify_descriptor(bytes.fromhex(entry["descriptor"]),
                                       bytes.fromhex(entry["signature"]))
            assert listed.encoded[4] == 2
            assert listed.vrf_key == delays.vrf_public_key(by_id[entry["node_id"]])
        # Refresh with a newer descriptor (new address); an older one is a 409.
        newer = make(seed=seeds[0], layer="entry", address="10.9.9.9:1",
                     published_at=int(time.time()) + 5)
        r = await a.client.post("/api/directory/nodes", json=_register_body(newer),
                                headers=operator)
        assert r.status_code == 200 and r.json()["address"] == "10.9.9.9:1"
        older = make(seed=seeds[0], layer="entry", published_at=int(time.time()) - 60)
        r = await a.client.post("/api/directory/nodes", json=_register_body(older),
                                headers=operator)
        assert r.status_code == 409
        stats = (await a.client.get("/api/dashboard/stats", headers=operator)).json()
        assert stats["nodes"]["total"] == 6 and stats["nodes"]["by_layer"]["mix"] == 3
        assert len(await a.store.audit.list(action="directory.register")) == 7

    api(body)


def test_bad_descriptors_change_nothing(api):
    async def body(a):
        operator = await a.headers("operator")
        good = make()
        stale = make(published_at=int(time.time()) - 7200, lifetime=3600)
        future = make(published_at=int(time.time()) + 3600)
        other = make(seed=os.urandom(32))
        v1 = b"FOGD\x01" + good.encoded[5:73] + good.encoded[106:]
        v1_signature = nb.crypto_sign(v1, nb.crypto_sign_seed_keypair(SEED)[1])[:64]
        cases = [
            ({"descriptor": v1.hex(), "signature": v1_signature.hex()}, "malformed_descriptor"),
            ({"descriptor": good.encoded.hex(), "signature": other.signature.hex()},
             "bad_signature"),
            (_register_body(stale), "stale_descriptor"),
            (_register_body(future), "future_descriptor"),
            ({"descriptor": good.encoded[:-3].hex(), "signature": good.signature.hex()},
             "malformed_descriptor"),
            ({"descriptor": "abc", "signature": good.signature.hex()}, "validation_failed"),
        ]
        for payload, code in cases:
            r = await a.client.post("/api/directory/nodes", json=payload, headers=operator)
            assert r.status_code == 422, (code, r.text)
            assert r.json()["error"]["code"] == code
        viewer = await a.headers("viewer")
        r = await a.client.post("/api/directory/nodes", json=_register_body(good), headers=viewer)
        assert r.status_code == 403
        assert (await a.client.get("/api/directory/nodes")).json()["nodes"] == []
        assert await a.store.audit.list(action="directory.register") == []

    api(body)


def test_vrf_publish_get_and_audit(api):
    async def body(a):
        operator = await a.headers("operator")
        d = make(seed=SEED)
        await a.client.post("/api/directory/nodes", json=_register_body(d), headers=operator)
        epoch, mean_us, max_us = 42, 5000, 100_000
        schedule = delays.EpochDelays(delays.vrf_secret_key(SEED), epoch, mean_us, max_us)
        path = f"/api/betanet/vrf/{d.node_id}/{epoch}"
        assert (await a.client.get(path)).status_code == 404
        wrong = vrf.prove(delays.vrf_secret_key(SEED), delays.epoch_alpha(epoch + 1))
        # a proof by the identity seed no longer verifies: the descriptor names the VRF key
        by_identity = vrf.prove(SEED, delays.epoch_alpha(epoch))
        for bad in (wrong, by_identity):
            r = await a.client.post(path, json={"proof": bad.hex()}, headers=operator)
            assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "proof"
        r = await a.client.post(path, json={"proof": schedule.proof.hex()}, headers=operator)
        assert r.status_code == 201 and r.json()["beta"] == schedule.beta.hex()
        got = (await a.client.get(path)).json()
        assert got["proof"] == schedule.proof.hex()
        tag = os.urandom(32)
        claim = {"node_id": d.node_id, "epoch": epoch, "tag": tag.hex(),
                 "claimed_delay_us": schedule.delay_us(tag), "mean_us": mean_us,
                 "max_us": max_us}
        r = await a.client.post("/api/betanet/vrf/audit", json=claim)
        assert r.status_code == 200 and r.json()["valid"] is True
        claim["claimed_delay_us"] += 1
        assert (await a.client.post("/api/betanet/vrf/audit", json=claim)).json()["valid"] is False
        claim["epoch"] = 7
        assert (await a.client.post("/api/betanet/vrf/audit", json=claim)).status_code == 404
        r = await a.client.get(f"/api/betanet/vrf/{d.node_id}/{2**63}")
        assert r.status_code == 422

    api(body)
