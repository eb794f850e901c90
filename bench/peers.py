"""Peer implementations measured next to fogcore's: sphinxmix 0.0.7 (PyPI, the `peers`
extra), Sphinx over NIST P-224 with petlib/OpenSSL, 5 hops and default parameters."""

import os
from collections.abc import Callable
from struct import pack

__all__ = ["sphinxmix_cases"]

HOPS = 5


def sphinxmix_cases() -> dict[str, Callable[[], object]] | None:
    """{"sphinxmix.create5": ..., "sphinxmix.process": ...} as zero-argument callables, or
    None when sphinxmix is not installed."""
    try:
        from sphinxmix.SphinxClient import Nenc, create_forward_message, pki_entry
        from sphinxmix.SphinxNode import sphinx_process
        from sphinxmix.SphinxParams import SphinxParams
    except ImportError:
        return None
    params = SphinxParams()  # defaults: P-224, 192-byte header, 1024-byte body
    group = params.group
    private, public = [], []
    for i in range(HOPS):
        nid = pack("b", i)
        x = group.gensecret()
        y = group.expon(group.g, [x])
        private.append(pki_entry(nid, x, y))
        public.append(pki_entry(nid, None, y))
    routing = [Nenc(entry.id) for entry in public]
    keys = [entry.y for entry in public]
    message = os.urandom(100)

    def create5():
        return create_forward_message(params, routing, keys, b"dest", message)

    header, delta = create5()
    first_secret = private[0].x

    def process():
        # sphinxmix keeps no replay state: the same packet can be processed again
        return sphinx_process(params, first_secret, header, delta)

    return {"sphinxmix.create5": create5, "sphinxmix.process": process}
