"""NVIDIA confidential-computing GPU evidence, as ``nvmlDeviceGetConfComputeGpuAttestationReport`` returns it.

The report is the SPDM GET_MEASUREMENTS request (37 bytes: version, code 0xE0, param1, param2, the 32-byte
nonce, slot id) followed by the GPU's signed MEASUREMENTS response (code 0x60), as NVIDIA's nvtrust local GPU
verifier reads it. pytest-tee checks the nonce locally; the signature, certificate chain and measurements are
checked by NVIDIA's verifier (nvtrust) or NRAS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_tee.attestation.formats import BlobReader

GPU_NONCE_SIZE = 32
SPDM_REQUEST_SIZE = 37
SPDM_GET_MEASUREMENTS = 0xE0
SPDM_MEASUREMENTS = 0x60


@dataclass
class NvidiaGpuReport:
    kind: ClassVar[str] = "nvidia-gpu-report"

    spdm_version: int
    request_code: int
    response_code: int
    nonce: bytes
    size: int

    @property
    def report_data(self) -> bytes:
        # What binds the results: the nonce the GPU signed over.
        return self.nonce

    @property
    def format(self) -> str:
        return f"NVIDIA GPU attestation report (SPDM {self.spdm_version >> 4}.{self.spdm_version & 0xF})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": self.size,
            "spdm_version": f"0x{self.spdm_version:02x}",
            "request_code": f"0x{self.request_code:02x}",
            "response_code": f"0x{self.response_code:02x}",
            "nonce": self.nonce.hex(),
        }


def parse_nvidia_report(blob: bytes) -> NvidiaGpuReport:
    reader = BlobReader(blob, "NVIDIA GPU attestation report")
    spdm_version = reader.uint("SPDM request version", 0, 1)
    request_code = reader.uint("SPDM request code", 1, 1)
    nonce = reader.take("nonce", 4, GPU_NONCE_SIZE)
    response_code = reader.uint("SPDM response code", SPDM_REQUEST_SIZE + 1, 1)
    if request_code != SPDM_GET_MEASUREMENTS:
        raise reader.error(f"SPDM request code at offset 1 is 0x{request_code:02x}, expected 0xe0 (GET_MEASUREMENTS)")
    if response_code != SPDM_MEASUREMENTS:
        raise reader.error(
            f"SPDM response code at offset {SPDM_REQUEST_SIZE + 1} is 0x{response_code:02x}, "
            "expected 0x60 (MEASUREMENTS)"
        )
    return NvidiaGpuReport(
        spdm_version=spdm_version,
        request_code=request_code,
        response_code=response_code,
        nonce=nonce,
        size=len(reader),
    )


def build_fake_gpu_report(nonce: bytes, *, measurements: bytes = b"\x00" * 64) -> bytes:
    """A report with the right framing for tests and simulations (no valid signature)."""
    request = bytes([0x11, SPDM_GET_MEASUREMENTS, 0x01, 0xFF]) + nonce + b"\x00"
    response = bytes([0x11, SPDM_MEASUREMENTS, 0x00, 0x00]) + measurements
    return request + response
