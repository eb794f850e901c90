"""VRF-derived per-packet delays: the byte-exact definition (docs/vrf-delays.md), agreement
of the compiled and pure implementations, the distribution, and the audit procedure."""

import math
import random
from array import array

import pytest
from conftest import load_impl

from fogcore import delays, vrf
from fogcore._impl import NO_EXTENSIONS

h = bytes.fromhex
SK = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")  # RFC 9381 B.3 #1
PK = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
MEAN, MAX = 50_000, 500_000

# The example of docs/vrf-delays.md: epoch 1 of the key above, mean 50 ms, max 500 ms.
DOC_ALPHA = h("666f67636f72652f7672662d64656c61792d65706f63682f76310000000000000001")
DOC_PROOF = h(
    "474381af11761b0c5e09212fbd2605a08979e2e078fed5828ce0d3e6eaa4788e"
    "2d3adfa5130d0604552ea6495958af2d04d2253b5c6dc1fd0df50712d1cff1b5"
    "f6ab261674e8114a317b7dbf0c2f0c0a"
)
DOC_BETA = h(
    "642d89e73350db8a79a69b249ab3ed28e2786ae655b91705de00435c58e16370"
    "c30e6a1556d1768d8d810c465bde6165c0e3c60706282ff63ef4c404531a59d7"
)
DOC_DELAYS = [(bytes(32), 23721), (bytes(range(32)), 103927), (b"\xff" * 32, 2729)]

needs_compiled = pytest.mark.skipif(NO_EXTENSIONS, reason="compiled extensions disabled")


@pytest.fixture
def draw(impl_mode):
    """The per-packet delay function of the implementation under test."""
    return load_impl(impl_mode, "_delays").delay_us


def test_delays_into_fills_every_tag(impl_mode):
    impl = load_impl(impl_mode, "_delays")
    rng = random.Random(7)
    beta, tags = rng.randbytes(64), rng.randbytes(32 * 50)
    out = array("I", bytes(4 * 50))
    assert impl.delays_into(beta, tags, MEAN, MAX, out) == 50
    assert list(out) == [delays.delay_us_reference(beta, tags[32 * i : 32 * i + 32], MEAN, MAX)
                         for i in range(50)]
    with pytest.raises(ValueError):
        impl.delays_into(beta, tags[:-1], MEAN, MAX, out)
    with pytest.raises(ValueError):
        impl.delays_into(beta, tags, MEAN, MAX, array("I", bytes(4 * 49)))


def test_epoch_alpha_encoding():
    assert delays.epoch_alpha(1) == DOC_ALPHA
    assert delays.epoch_alpha(0) == b"fogcore/vrf-delay-epoch/v1" + bytes(8)
    assert delays.epoch_alpha(2**64 - 1).endswith(b"\xff" * 8)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            delays.epoch_alpha(bad)


def test_documented_example(draw):
    proof = vrf.prove(SK, DOC_ALPHA)
    assert proof == DOC_PROOF
    assert vrf.verify(PK, proof, DOC_ALPHA) == DOC_BETA
    for tag, expected in DOC_DELAYS:
        assert draw(DOC_BETA, tag, MEAN, MAX) == expected
        # clamping: at most max_us
        assert draw(DOC_BETA, tag, MEAN, 20_000) == min(expected, 20_000)


def test_epoch_delays_object():
    epoch = delays.EpochDelays(SK, 1, MEAN, MAX)
    assert epoch.proof == DOC_PROOF and epoch.beta == DOC_BETA
    assert (epoch.epoch, epoch.mean_us, epoch.max_us) == (1, MEAN, MAX)
    for tag, expected in DOC_DELAYS:
        assert epoch.delay_us(tag) == expected
    assert delays.EpochDelays(SK, 2, MEAN, MAX).beta != DOC_BETA


def test_neg_ln_is_accurate():
    rng = random.Random(7)
    for m in [1, 2, 3, 2**31 - 1, 2**31, 2**32 + 1, 2**52, 2**53 - 1, 2**53] + [
        rng.randrange(1, 2**53 + 1) for _ in range(2000)
    ]:
        assert abs(delays.neg_ln_q30(m) / 2**30 + math.log(m / 2**53)) < 1e-7
    for bad in (0, 2**53 + 1):
        with pytest.raises(ValueError):
            delays.neg_ln_q30(bad)


@needs_compiled
def test_neg_ln_compiled_matches_reference():
    compiled = load_impl("c", "_delays")
    rng = random.Random(11)
    ms = [1, 2, 2**31 - 1, 2**31, 2**32, 2**53] + [rng.randrange(1, 2**53 + 1)
                                                    for _ in range(20000)]
    ms += [1 << rng.randrange(54) for _ in range(200)]
    for m in ms:
        assert compiled.neg_ln(m) == delays.neg_ln_q30(m), m


@needs_compiled
def test_compiled_matches_reference_on_random_tags():
    compiled = load_impl("c", "_delays")
    rng = random.Random(12)
    params = [(MEAN, MAX), (1, 2**32 - 1), (2**32 - 1, 2**32 - 1), (0, 100), (1000, 0),
              (10_000_000, 60_000_000)]
    for mean_us, max_us in params:
        beta = rng.randbytes(64)
        tags = rng.randbytes(32 * 3000)
        out = array("I", bytes(4 * 3000))
        assert compiled.delays_into(beta, tags, mean_us, max_us, out) == 3000
        for i in range(3000):
            tag = tags[32 * i : 32 * i + 32]
            expected = delays.delay_us_reference(beta, tag, mean_us, max_us)
            assert out[i] == compiled.delay_us(beta, tag, mean_us, max_us) == expected


def test_distribution_is_exponential_with_the_configured_mean(draw):
    rng = random.Random(2025)  # fixed seed: the test is deterministic
    beta = rng.randbytes(64)
    mean_us, count = 40_000, 40_000
    samples = [draw(beta, rng.randbytes(32), mean_us, 2**32 - 1) for _ in range(count)]
    mean = sum(samples) / count
    # the sample mean has a standard error of mean_us / sqrt(count) = 0.5 %
    assert abs(mean - mean_us) < 0.025 * mean_us
    below_mean = sum(s < mean_us for s in samples) / count
    assert abs(below_mean - (1 - math.exp(-1))) < 0.015
    # memorylessness spot check: P(d > 2 mean) = e^-2
    assert abs(sum(s > 2 * mean_us for s in samples) / count - math.exp(-2)) < 0.01


def test_clamping_at_the_maximum(draw):
    rng = random.Random(31)
    beta = rng.randbytes(64)
    samples = [draw(beta, rng.randbytes(32), 10_000, 20_000) for _ in range(20_000)]
    assert max(samples) == 20_000
    assert abs(samples.count(20_000) / len(samples) - math.exp(-2)) < 0.015


def test_bad_inputs(draw):
    with pytest.raises(ValueError):
        draw(DOC_BETA, bytes(31), MEAN, MAX)
    with pytest.raises(ValueError):
        draw(DOC_BETA[:63], bytes(32), MEAN, MAX)
    with pytest.raises(OverflowError):
        draw(DOC_BETA, bytes(32), -1, MAX)
    with pytest.raises(OverflowError):
        draw(DOC_BETA, bytes(32), MEAN, 2**32)


def test_audit_accepts_exactly_the_right_delay():
    epoch = delays.EpochDelays(SK, 7, MEAN, MAX)
    rng = random.Random(3)
    for _ in range(20):
        tag = rng.randbytes(32)
        d = epoch.delay_us(tag)
        assert delays.expected_delay_us(PK, 7, epoch.proof, tag, MEAN, MAX) == d
        assert delays.audit(PK, 7, epoch.proof, tag, d, MEAN, MAX)
        assert not delays.audit(PK, 7, epoch.proof, tag, d + 1, MEAN, MAX)
        assert not delays.audit(PK, 7, epoch.proof, tag, max(d - 1, 0) if d else 1, MEAN, MAX)
    # other delay parameters give another delay
    tag = bytes(range(32))
    assert not delays.audit(PK, 7, epoch.proof, tag, epoch.delay_us(tag), MEAN * 2, MAX)


def test_audit_rejects_a_proof_for_another_epoch_or_key():
    epoch = delays.EpochDelays(SK, 7, MEAN, MAX)
    tag = bytes(32)
    with pytest.raises(vrf.InvalidProof):
        delays.audit(PK, 8, epoch.proof, tag, epoch.delay_us(tag), MEAN, MAX)
    other_pk = vrf.public_key(bytes(32))
    with pytest.raises(vrf.InvalidProof):
        delays.audit(other_pk, 7, epoch.proof, tag, epoch.delay_us(tag), MEAN, MAX)
    with pytest.raises(vrf.InvalidProof):
        delays.audit(PK, 7, epoch.proof[:-1], tag, epoch.delay_us(tag), MEAN, MAX)


# ---- the node's VRF key (docs/vrf-delays.md §1.1) ------------------------------------------

KAT_SEED = bytes(range(32))
KAT_VRF_SECRET = h("21d348a9c7d1d479b0ca560dbf94c3a731cf4a42476a2387d0a89f17c3f653a5")
KAT_VRF_PUBLIC = h("57c1315d37dd65af8c51ad2683eb444ed85530a50bad5e1552549ce820b8f508")
KAT_IDENTITY = h("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")


def test_vrf_key_derivation_known_answer():
    import hashlib

    import nacl.bindings as nb

    secret = delays.vrf_secret_key(KAT_SEED)
    assert secret == KAT_VRF_SECRET
    # the documented formula, written out
    assert secret == hashlib.blake2b(b"fogcore vrf key v1", key=KAT_SEED, digest_size=32).digest()
    assert delays.VRF_KEY_LABEL == b"fogcore vrf key v1"
    assert delays.vrf_public_key(KAT_SEED) == KAT_VRF_PUBLIC == vrf.public_key(secret)
    identity = nb.crypto_sign_seed_keypair(KAT_SEED)[0]
    assert identity == KAT_IDENTITY and KAT_VRF_PUBLIC != identity
    assert secret != KAT_SEED


def test_vrf_key_derivation_is_deterministic_and_per_seed():
    assert delays.vrf_secret_key(bytearray(KAT_SEED)) == delays.vrf_secret_key(KAT_SEED)
    assert delays.vrf_secret_key(b"\x01" * 32) != delays.vrf_secret_key(b"\x02" * 32)
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            delays.vrf_secret_key(bad)


def test_proof_verifies_under_the_vrf_key_not_the_identity_key(impl_mode):

    impl = load_impl(impl_mode, "_vrf")
    epoch = delays.EpochDelays(delays.vrf_secret_key(KAT_SEED), 7, MEAN, MAX)
    alpha = delays.epoch_alpha(7)
    assert impl.verify(KAT_VRF_PUBLIC, epoch.proof, alpha) == epoch.beta
    assert impl.verify(KAT_IDENTITY, epoch.proof, alpha) is None
    assert delays.audit(KAT_VRF_PUBLIC, 7, epoch.proof, bytes(32), epoch.delay_us(bytes(32)),
                        MEAN, MAX)
    with pytest.raises(vrf.InvalidProof):
        delays.audit(KAT_IDENTITY, 7, epoch.proof, bytes(32), 0, MEAN, MAX)
