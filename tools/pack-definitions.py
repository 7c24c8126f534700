#!/usr/bin/env python3
"""Pack the parts of the FHIR R4 (4.0.1) core definitions that oxehr needs into one
compact, gzip-compressed JSON file embedded in the `oxehr-fhir` crate.

Usage: python3 tools/pack-definitions.py ../shared/data/fhir-r4 crates/fhir/definitions/r4.json.gz

Source: the HL7 FHIR R4 core package (CC0-1.0). The output keeps, per StructureDefinition,
the element paths, cardinalities, types, summary flags, required bindings, primitive
regexes and the FHIRPath invariants of severity error (less those `oxehr_fhir::validate`
checks natively: NATIVE_INVARIANTS below); every SearchParameter; the Patient CompartmentDefinition (and the others); and the
expansions of the value sets that core elements bind with strength `required` and that are
enumerable from the core CodeSystems.
"""
import gzip, json, os, sys, tarfile

src, out = sys.argv[1], sys.argv[2]
def load(name):
    with open(os.path.join(src, name)) as f:
        return json.load(f)

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"

# Invariants the validator in `oxehr_fhir::validate` checks in code, with better messages
# than a FHIRPath verdict (ele-1 on every element is its structural check of empty values).
NATIVE_INVARIANTS = {"ele-1", "ext-1", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "ref-1", "txt-1", "txt-2"}

types = {}
required_vs = set()
for bundle in ("profiles-types.json", "profiles-resources.json"):
    for e in load(bundle)["entry"]:
        sd = e["resource"]
        if sd["resourceType"] != "StructureDefinition":
            continue
        if sd.get("derivation") == "constraint":
            continue  # profiles (e.g. SimpleQuantity, vitalsigns) are not base types
        t = {
            "kind": sd["kind"],
            "abstract": sd.get("abstract", False),
            "base": (sd.get("baseDefinition") or "").rsplit("/", 1)[-1] or None,
            "elements": [],
        }
        for el in sd["snapshot"]["element"]:
            item = {"path": el["path"], "min": el.get("min", 0), "max": el.get("max", "*")}
            tys = []
            for ty in el.get("type", []):
                code = ty["code"]
                for ext in ty.get("extension", []):
                    if ext["url"] == FHIR_TYPE_EXT:
                        code = ext.get("valueUrl") or ext.get("valueUri") or code
                    if ext["url"] == REGEX_EXT:
                        item["regex"] = ext["valueString"]
                entry = {"code": code}
                if ty.get("targetProfile"):
                    entry["targets"] = [p.rsplit("/", 1)[-1] for p in ty["targetProfile"]]
                if ty.get("profile"):
                    entry["profile"] = [p.rsplit("/", 1)[-1] for p in ty["profile"]]
                tys.append(entry)
            if tys:
                item["types"] = tys
            if el.get("contentReference"):
                item["contentReference"] = el["contentReference"].lstrip("#")
            if el.get("isSummary"):
                item["summary"] = True
            if el.get("isModifier"):
                item["modifier"] = True
            cons = [
                {"key": c["key"], "human": c["human"], "expression": c["expression"]}
                for c in el.get("constraint", [])
                if c.get("severity") == "error" and c.get("expression") and c["key"] not in NATIVE_INVARIANTS
            ]
            if cons:
                item["constraints"] = cons
            b = el.get("binding")
            if b and b.get("strength") == "required" and b.get("valueSet"):
                vs = b["valueSet"].split("|")[0]
                item["binding"] = vs
                required_vs.add(vs)
            t["elements"].append(item)
        types[sd["id"]] = t

# Value sets: expand the required ones that are enumerable from core code systems.
vsb = load("valuesets.json")["entry"]
codesystems, valuesets = {}, {}
for e in vsb:
    r = e["resource"]
    if r["resourceType"] == "CodeSystem":
        codesystems[r["url"]] = r
    elif r["resourceType"] == "ValueSet":
        valuesets[r["url"]] = r
# v3 / v2 code systems live in the package, not in valuesets.json
with tarfile.open(os.path.join(src, "hl7.fhir.r4.core-4.0.1.tgz")) as tf:
    for m in tf.getmembers():
        n = os.path.basename(m.name)
        if n.startswith(("CodeSystem-", "ValueSet-")) and n.endswith(".json"):
            r = json.load(tf.extractfile(m))
            if r["resourceType"] == "CodeSystem":
                codesystems.setdefault(r["url"], r)
            else:
                valuesets.setdefault(r["url"], r)
        if n.startswith("CompartmentDefinition-") and n.endswith(".json"):
            pass

def cs_codes(url):
    cs = codesystems.get(url)
    if not cs or cs.get("content") not in ("complete", None) or not cs.get("concept"):
        return None
    out = []
    def walk(cs_concepts):
        for c in cs_concepts:
            out.append(c["code"])
            walk(c.get("concept", []))
    walk(cs["concept"])
    return out

def expand(url, depth=0):
    vs = valuesets.get(url)
    if vs is None or depth > 8:
        return None
    codes = set()
    for inc in vs.get("compose", {}).get("include", []):
        if inc.get("filter"):
            return None
        part = None
        if inc.get("concept"):
            part = {(inc["system"], c["code"]) for c in inc["concept"]}
        elif inc.get("system"):
            cc = cs_codes(inc["system"])
            if cc is None:
                return None
            part = {(inc["system"], c) for c in cc}
        for sub in inc.get("valueSet", []):
            s = expand(sub.split("|")[0], depth + 1)
            if s is None:
                return None
            part = s if part is None else (part & s)
        if part is None:
            return None
        codes |= part
    for exc in vs.get("compose", {}).get("exclude", []):
        if exc.get("concept"):
            codes -= {(exc["system"], c["code"]) for c in exc["concept"]}
        else:
            return None
    return codes

expanded = {}
for url in sorted(required_vs):
    s = expand(url)
    if s:
        expanded[url] = sorted([list(x) for x in s])

params = []
for e in load("search-parameters.json")["entry"]:
    sp = e["resource"]
    p = {k: sp[k] for k in ("url", "code", "base", "type") if k in sp}
    if sp.get("expression"):
        p["expression"] = sp["expression"]
    if sp.get("target"):
        p["target"] = sp["target"]
    if sp.get("component"):
        p["component"] = [{"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]]
    if sp.get("multipleOr") is not None:
        p["multipleOr"] = sp["multipleOr"]
    if sp.get("modifier"):
        p["modifier"] = sp["modifier"]
    params.append(p)

compartments = {}
with tarfile.open(os.path.join(src, "hl7.fhir.r4.core-4.0.1.tgz")) as tf:
    for m in tf.getmembers():
        n = os.path.basename(m.name)
        if n.startswith("CompartmentDefinition-") and n.endswith(".json") and "example" not in n:
            cd = json.load(tf.extractfile(m))
            compartments[cd["code"]] = {r["code"]: r.get("param", []) for r in cd.get("resource", []) if r.get("param")}

packed = {
    "fhirVersion": "4.0.1",
    "source": "HL7 FHIR R4 core package hl7.fhir.r4.core 4.0.1 (CC0-1.0)",
    "types": types,
    "searchParameters": params,
    "compartments": compartments,
    "valueSets": expanded,
}
raw = json.dumps(packed, separators=(",", ":"), sort_keys=True).encode()
with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as f:
    f.write(raw)
print(f"types={len(types)} params={len(params)} valueSets={len(expanded)}/{len(required_vs)} raw={len(raw)} gz={os.path.getsize(out)}")
