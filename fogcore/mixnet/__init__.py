"""The mix node runtime, the directory's node descriptors and (later) the client side."""

from fogcore.mixnet.descriptor import (
    Descriptor,
    DescriptorError,
    FutureDescriptor,
    InvalidKey,
    InvalidSignature,
    MalformedDescriptor,
    StaleDescriptor,
    sign_descriptor,
    verify_descriptor,
)

__all__ = [
    "Descriptor",
    "DescriptorError",
    "FutureDescriptor",
    "InvalidKey",
    "InvalidSignature",
    "MalformedDescriptor",
    "StaleDescriptor",
    "sign_descriptor",
    "verify_descriptor",
]
