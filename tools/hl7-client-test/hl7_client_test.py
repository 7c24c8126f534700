"""Builds HL7 v2 messages with hl7apy (a third-party library, not ours) and sends them
to oxehr's MLLP listener, printing one JSON line per message: what was sent (the values
the Rust test checks the record against) and the acknowledgement's MSA fields.

usage: hl7_client_test.py HOST PORT FACILITY
"""

import json
import socket
import sys
from datetime import datetime, timezone

from hl7apy.core import Message
from hl7apy.parser import parse_message

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def send(host, port, text):
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(VT + text.encode("utf-8") + FS + CR)
        got = b""
        while not got.endswith(FS + CR):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed before the acknowledgement")
            got += chunk
    ack = parse_message(got.strip(VT).rstrip(CR).rstrip(FS).decode("utf-8").replace("\n", "\r"))
    return ack.msa.msa_1.value, ack.msa.msa_2.value


def header(m, facility, control_id, message_type):
    m.msh.msh_3 = "HL7APY"
    m.msh.msh_4 = facility
    m.msh.msh_5 = "OXEHR"
    m.msh.msh_6 = "PRACTICE"
    m.msh.msh_7 = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S+0000")
    m.msh.msh_9 = message_type
    m.msh.msh_10 = control_id
    m.msh.msh_11 = "P"


def patient(m, mrn, family, given, birth, gender):
    m.pid.pid_1 = "1"
    m.pid.pid_3 = f"{mrn}^^^HL7APY^MR"
    m.pid.pid_5 = f"{family}^{given}"
    m.pid.pid_7 = birth
    m.pid.pid_8 = gender


def admission(facility, n):
    m = Message("ADT_A01", version="2.5")
    header(m, facility, f"APY-ADT-{n}", "ADT^A01^ADT_A01")
    m.evn.evn_2 = "20261201083000"
    mrn, family, given = f"APY{n:04d}", f"Testperson{n}", "Alex"
    patient(m, mrn, family, given, "19800214", "F")
    m.pv1.pv1_2 = "I"
    m.pv1.pv1_19 = f"V{n:05d}"
    m.pv1.pv1_44 = "20261201083000"
    return m, {"kind": "ADT", "control_id": f"APY-ADT-{n}", "mrn": mrn, "family": family,
               "birth_date": "1980-02-14", "gender": "female", "visit": f"V{n:05d}"}


def result(facility, n, value, unit, low, high, flag):
    m = Message("ORU_R01", version="2.5")
    header(m, facility, f"APY-ORU-{n}", "ORU^R01^ORU_R01")
    mrn = f"APY{n:04d}"
    patient(m, mrn, f"Testperson{n}", "Alex", "19800214", "F")
    obr = m.oru_r01_patient_result.oru_r01_order_observation.obr
    obr.obr_1 = "1"
    obr.obr_2 = f"P{n}"
    obr.obr_3 = f"F{n}"
    obr.obr_4 = "2345-7^Glucose [Mass/volume] in Serum or Plasma^LN"
    obr.obr_7 = "20261202071500"
    obs = m.oru_r01_patient_result.oru_r01_order_observation.oru_r01_observation.obx
    obs.obx_1 = "1"
    obs.obx_2 = "NM"
    obs.obx_3 = "2345-7^Glucose [Mass/volume] in Serum or Plasma^LN"
    obs.obx_5 = str(value)
    obs.obx_6 = f"{unit}^{unit}^UCUM"
    obs.obx_7 = f"{low}-{high}"
    obs.obx_8 = flag
    obs.obx_11 = "F"
    obs.obx_14 = "20261202071500"
    return m, {"kind": "ORU", "control_id": f"APY-ORU-{n}", "mrn": mrn, "code": "2345-7",
               "value": value, "unit": unit, "low": low, "high": high, "flag": flag}


def main():
    host, port, facility = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    built = [admission(facility, 1), result(facility, 1, 182, "mg/dL", 70, 105, "H"),
             admission(facility, 2), result(facility, 2, 88, "mg/dL", 70, 105, "N")]
    for m, facts in built:
        text = m.to_er7()
        code, acked = send(host, port, text)
        facts.update({"ack": code, "acked_control_id": acked})
        print(json.dumps(facts), flush=True)


if __name__ == "__main__":
    main()
