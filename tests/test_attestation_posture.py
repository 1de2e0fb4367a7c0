"""Posture notes: DEBUG means not confidential, AMX withheld by XFAM, no PERFMON, SNP debug policy, GPU modes."""

from __future__ import annotations

from dataclasses import replace

from pytest_tee.attestation.posture import CRITICAL, INFO, WARNING, format_note, is_confidential, posture_notes
from pytest_tee.attestation.sev import SnpReport
from pytest_tee.attestation.tdx import TD_ATTRIBUTE_MASKS, TdAttributes, TdReport, Xfam, quote_from_tdreport


def td(attributes: int = TD_ATTRIBUTE_MASKS["SEPT_VE_DISABLE"], xfam: int = 0x61AE7) -> TdReport:
    return TdReport(
        report_type=0x81,
        report_subtype=0,
        report_version=0,
        cpusvn=bytes(16),
        tee_tcb_info_hash=bytes(48),
        tee_info_hash=bytes(48),
        report_data=bytes(64),
        mac=bytes(32),
        tee_tcb_valid=bytes(8),
        tee_tcb_svn=bytes(16),
        mrseam=bytes(48),
        mrsignerseam=bytes(48),
        seam_attributes=bytes(8),
        tee_tcb_svn2=bytes(16),
        td_attributes=TdAttributes(attributes),
        xfam=Xfam(xfam),
        mrtd=bytes(48),
        mrconfigid=bytes(48),
        mrowner=bytes(48),
        mrownerconfig=bytes(48),
        rtmr0=bytes(48),
        rtmr1=bytes(48),
        rtmr2=bytes(48),
        rtmr3=bytes(48),
        servtd_hash=bytes(48),
    )


def snp(policy: int = 0x30000, vmpl: int = 0) -> SnpReport:
    return SnpReport(
        version=2,
        guest_svn=0,
        policy=policy,
        family_id=bytes(16),
        image_id=bytes(16),
        vmpl=vmpl,
        signature_algo=1,
        current_tcb=0,
        platform_info=0,
        key_info=0,
        report_data=bytes(64),
        measurement=bytes(48),
        host_data=bytes(32),
        id_key_digest=bytes(48),
        author_key_digest=bytes(48),
        report_id=bytes(32),
        report_id_ma=bytes(32),
        reported_tcb=0,
        chip_id=bytes(64),
        committed_tcb=0,
        launch_tcb=0,
        signature=bytes(512),
    )


def codes(notes) -> dict[str, str]:
    return {note.code: note.severity for note in notes}


def test_debug_td_is_loudly_not_confidential() -> None:
    notes = posture_notes([td(attributes=1 | TD_ATTRIBUTE_MASKS["SEPT_VE_DISABLE"])])
    debug = next(note for note in notes if note.code == "td-debug")
    assert debug.severity == CRITICAL
    assert "NOT CONFIDENTIAL" in debug.message
    assert format_note(debug).startswith("!! NOT CONFIDENTIAL")
    assert notes[0] is debug  # critical notes come first
    assert not is_confidential(notes)


def test_production_td_with_amx_and_perfmon_has_no_notes() -> None:
    notes = posture_notes([td(attributes=TD_ATTRIBUTE_MASKS["PERFMON"])], cpu_flags=["amx_bf16", "avx512f"])
    assert notes == []
    assert is_confidential(notes)


def test_xfam_without_amx_on_an_amx_cpu_warns_about_bf16_throughput() -> None:
    notes = posture_notes([td(xfam=0xE7)], cpu_flags=["avx512f", "AMX_BF16", "amx_tile"])
    amx = next(note for note in notes if note.code == "xfam-no-amx")
    assert amx.severity == WARNING
    assert "amx_bf16" in amx.message
    assert "bf16" in amx.message
    # Without knowing the CPU, it is only a fact worth stating.
    assert codes(posture_notes([td(xfam=0xE7)]))["xfam-no-amx"] == INFO


def test_xfam_without_avx512_on_an_avx512_cpu_warns() -> None:
    assert codes(posture_notes([td(xfam=0x60007)], cpu_flags=["avx512f"]))["xfam-no-avx512"] == WARNING


def test_perfmon_off_means_no_pmu_counters() -> None:
    note = next(note for note in posture_notes([td()]) if note.code == "td-no-perfmon")
    assert note.severity == INFO
    assert "PMU" in note.message


def test_tdreport_and_quote_of_one_td_give_one_note_naming_both() -> None:
    report = td(attributes=1)
    notes = posture_notes([report, quote_from_tdreport(report)])
    debug = [note for note in notes if note.code == "td-debug"]
    assert len(debug) == 1
    assert debug[0].source == "tdx-tdreport, tdx-quote"


def test_snp_debug_policy_and_vmpl() -> None:
    notes = posture_notes([snp(policy=0x30000 | 1 << 19, vmpl=2)])
    assert codes(notes) == {"snp-debug": CRITICAL, "snp-vmpl": INFO}
    assert "NOT CONFIDENTIAL" in notes[0].message
    assert posture_notes([replace(snp(), policy=0x30000)]) == []


def test_gpu_devtools_and_simulated_cc() -> None:
    notes = posture_notes(
        [], gpu_contexts=[{"index": 0, "name": "H100", "cc_environment": "sim", "devtools_mode": True}]
    )
    assert codes(notes) == {"gpu-cc-simulated": CRITICAL, "gpu-devtools": WARNING}
    assert "H100" in notes[1].message
