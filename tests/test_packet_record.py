"""The outcome record is defined once, in C (fogcore/_ext/_outcome.pxd); its Python mirrors
(fogcore.packet.outcome, fogcore.mixnet._frames_py, fogcore.packet's constants) must agree
with the layout every compiled module that uses it was built with."""

import pytest

from fogcore._impl import NO_EXTENSIONS, compiled_available
from fogcore.mixnet import _frames_py
from fogcore.packet import BATCH_STRIDE, outcome


def python_layout() -> dict:
    """The record as the Python mirrors describe it, in the shape C exports."""
    reasons = {r.name: int(r) for r in outcome.Reason}
    reasons.update(TRUNCATED=_frames_py.REASON_TRUNCATED, SLOW=_frames_py.REASON_SLOW,
                   ARENA_FULL=_frames_py.REASON_ARENA_FULL)
    return {
        "size": outcome.OUTCOME_RECORD_SIZE,
        "fields": dict(outcome.RECORD_FIELDS),
        "kinds": {k.name: int(k) for k in outcome.Kind},
        "reasons": reasons,
        "tag_known_from": int(outcome.TAG_KNOWN_FROM),
        "batch_stride": BATCH_STRIDE,
        "slot_bits": _frames_py.KEY_SLOT_BITS,
    }


def test_python_mirrors_agree():
    assert _frames_py.RECORD_BYTES == outcome.OUTCOME_RECORD_SIZE == 96
    assert _frames_py.STRIDE == BATCH_STRIDE
    assert _frames_py.REASON_WRONG_SIZE == outcome.Reason.WRONG_SIZE
    assert _frames_py.REASON_BAD_VERSION == outcome.Reason.BAD_VERSION
    assert _frames_py.REASON_BAD_FORMAT == outcome.Reason.BAD_FORMAT
    fields = list(outcome.RECORD_FIELDS.values())
    # contiguous, no gap, ending at the record size
    assert fields[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in zip(fields, fields[1:], strict=False))
    assert fields[-1][0] + fields[-1][1] == outcome.OUTCOME_RECORD_SIZE


@pytest.mark.skipif(NO_EXTENSIONS, reason="compiled extensions disabled")
@pytest.mark.parametrize("module", ["_batch", "_frames"])
def test_compiled_record_matches_python_mirror(module):
    compiled = compiled_available(module)
    if compiled is None:
        pytest.fail(f"fogcore._ext.{module} is not built: run `pip install .`")
    assert compiled.OUTCOME_LAYOUT == python_layout()
    size = compiled.RECORD_SIZE if module == "_batch" else compiled.RECORD_BYTES
    assert size == outcome.OUTCOME_RECORD_SIZE
