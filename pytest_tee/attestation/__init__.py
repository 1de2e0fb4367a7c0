"""Attestation: bind benchmark results to the trust domain that produced them.

- ``tdx``, ``sev``, ``nvidia``, ``evidence``: parse TDREPORTs, TD quotes (v4/v5), SEV-SNP reports, GPU reports.
- ``collect``: gather evidence (ioctl, configfs-tsm, NVML) through a sysroot, recording each failure's reason.
- ``binding``: REPORTDATA = SHA-512 of the canonical results; ``attest_document`` / ``SessionAttestor``.
- ``posture``: what the evidence says about the measurement conditions (DEBUG TD, AMX withheld, no PERFMON).
- ``verify``, ``verify_command``, ``evidence_command``: ``pytest-tee verify`` and ``pytest-tee evidence``.
- ``simulate``: a simulated TDX / SEV-SNP guest for tests.

Nothing here imports torch, numpy or scipy.
"""
