"""Node configuration (TOML + environment) and the key store on disk."""

import os
import stat

import pytest

from fogcore import delays, vrf
from fogcore.mixnet.config import ConfigError, load_config
from fogcore.mixnet.descriptor import sign_descriptor
from fogcore.mixnet.keystore import KeyStore, KeyStoreError


def test_toml_then_environment(tmp_path):
    path = tmp_path / "node.toml"
    ident = "ab" * 32
    path.write_text(f"""
[node]
listen_port = 9100
layer = "gateway"
format = "kem"
mean_delay_ms = 20
peer_rate = 500.0
process_in_thread = false
peers = {{ "{ident}" = "127.0.0.1:9101" }}
""")
    cfg = load_config(str(path), env={"FOGCORE_NODE_MEAN_DELAY_MS": "5",
                                      "FOGCORE_NODE_ARENA_SLOTS": "1024"})
    assert (cfg.listen_port, cfg.layer, cfg.format) == (9100, "gateway", "kem")
    assert cfg.mean_delay_ms == 5.0 and cfg.arena_slots == 1024
    assert cfg.process_in_thread is False and cfg.peer_rate == 500.0
    assert cfg.peer_table() == {bytes.fromhex(ident): ("127.0.0.1", 9101)}


@pytest.mark.parametrize("env", [
    {"FOGCORE_NODE_LAYER": "core"},
    {"FOGCORE_NODE_FORMAT": "onion"},
    {"FOGCORE_NODE_ARENA_SLOTS": "lots"},
    {"FOGCORE_NODE_MEAN_DELAY_MS": "50", "FOGCORE_NODE_MAX_DELAY_MS": "10"},
    {"FOGCORE_NODE_PROCESS_IN_THREAD": "maybe"},
    {"FOGCORE_NODE_PEERS": "abcd=127.0.0.1:1"},
])
def test_bad_values_raise_config_error(env):
    with pytest.raises(ConfigError):
        load_config(env=env)


def test_unknown_setting_in_file(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text("[node]\nlisten_prot = 1\n")
    with pytest.raises(ConfigError, match="listen_prot"):
        load_config(str(path), env={})


def test_keystore_persists_and_rotates(tmp_path):
    path = str(tmp_path / "keys.json")
    now = [10_000.0]
    ks = KeyStore(path, key_epoch_s=100, overlap_s=20, clock=lambda: now[0])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    epoch, keys = ks.current()
    assert epoch == 100
    upcoming = ks.upcoming()[1]
    again = KeyStore(path, key_epoch_s=100, overlap_s=20, clock=lambda: now[0])
    assert again.node_id == ks.node_id
    assert again.current()[1].routing_secret == keys.routing_secret
    now[0] = 10_105.0
    assert ks.current()[1].routing_secret == upcoming.routing_secret
    assert ks.previous()[1].routing_secret == keys.routing_secret
    now[0] = 10_121.0
    assert ks.previous() is None
    now[0] = 10_350.0                      # old keys are erased from the file
    ks.current()
    reread = KeyStore(path, key_epoch_s=100, overlap_s=20, clock=lambda: now[0])
    assert 100 not in reread._routing


def test_keystore_rejects_a_bad_file(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeyStoreError):
        KeyStore(str(path))


def test_keystore_vrf_key_is_derived_not_the_identity_seed(tmp_path):
    path = str(tmp_path / "keys.json")
    ks = KeyStore(path)
    assert ks.vrf_secret_key == delays.vrf_secret_key(ks.identity_seed) != ks.identity_seed
    assert ks.vrf_public_key == vrf.public_key(ks.vrf_secret_key) != ks.node_id
    again = KeyStore(path)  # derived again from the stored seed: the same key
    assert (again.vrf_secret_key, again.vrf_public_key) == (ks.vrf_secret_key,
                                                            ks.vrf_public_key)
    assert ks.vrf_secret_key.hex() not in (tmp_path / "keys.json").read_text()


def test_node_proof_verifies_under_its_descriptor_vrf_key(run, net):
    async def body():
        node = await net.node(3)
        try:
            ks = node.keystore
            d = sign_descriptor(ks.identity_seed, vrf_key=ks.vrf_public_key,
                                routing_key=node.keys.routing_public, layer="mix",
                                format="sphinx", address="127.0.0.1:9")
            assert d.vrf_key == ks.vrf_public_key != d.identity_key
            epoch = node.delay_epoch
            alpha = delays.epoch_alpha(epoch.epoch)
            assert vrf.verify(d.vrf_key, epoch.proof, alpha) == epoch.beta
            with pytest.raises(vrf.InvalidProof):
                vrf.verify(d.identity_key, epoch.proof, alpha)
        finally:
            await net.stop()

    run(body())
