"""Attestation: bind benchmark results to the trust domain that produced them.

- ``tdx``, ``sev``, ``nvidia``, ``evidence``: parse TDREPORTs, TD quotes (v4/v5), SEV-SNP reports, GPU reports.
- ``collect``: gather evidence (ioctl, configfs-tsm, NVML) through a sysroot, recording each failure's reason.
- ``binding``: REPORTDATA = SHA-512 of the canonical results; ``attest_document`` / ``SessionAttestor``.
- ``posture``: what the evidence says about the measurement conditions (DEBUG TD, AMX withheld, no PERFMON).
- ``tdx_verify``, ``snp_verify``, ``chain``, ``trust_roots``, ``collateral``, ``signatures``: signatures checked
  offline up to pinned vendor roots (TD quote → Intel SGX Root CA, SNP report → AMD ARK), TCB status from
  collateral files.
- ``verify``, ``verify_command``, ``evidence_command``: ``pytest-tee verify`` and ``pytest-tee evidence``.
- ``simulate``, ``simulated_pki``: a simulated TDX / SEV-SNP guest for tests, signing under self-made roots.

Nothing here imports torch, numpy or scipy.
"""
