//! The VSAC value sets the four measures name, by OID, each with the part of its
//! expansion this crate recognises.
//!
//! We have no VSAC licence or expansion service, so each value set carries a written-out
//! subset of its codes. Every OID below is the one the 2024 measure logic names (the
//! QI-Core 2024 CQL in `cqframework/ecqm-content-qicore-2024`, `input/cql/*.cql`), and
//! every code under `codes` was checked against the expansion published next to it
//! (`input/vocabulary/valueset/external/valueset-<OID>.json`, expansion `20240502`):
//! where a list says "complete" it is the whole expansion, otherwise it is a subset.
//!
//! `local` holds codes that Synthea (our test data) uses for the same concept but that
//! the VSAC expansion does not contain. They count as members so the measures recognise
//! Synthea records, and every match on one says so in the evidence. A site with a real
//! expansion would drop them.
//!
//! Value sets the measures name whose members we could not check are not listed here;
//! the criteria that use them are not implemented (see each measure's doc):
//! Online Assessments `2.16.840.1.113883.3.464.1003.101.12.1089`, Telephone Visits
//! `…101.12.1080`, Hospice Diagnosis `…1003.1165`, Palliative Care Diagnosis `…1003.1167`,
//! Frailty Encounter `…101.12.1088`, Frailty Symptom `…113.12.1075`, History of bilateral
//! mastectomy `…198.12.1068`, Status Post Left/Right Mastectomy `…198.12.1069`/`…1070`,
//! Unilateral Mastectomy Left/Right/Unspecified `…198.12.1133`/`…1134`/`…1071`,
//! Chronic Kidney Disease Stage 5 `2.16.840.1.113883.3.526.3.1002`, Kidney Transplant
//! Recipient `…109.12.1029`, Kidney Transplant `…109.12.1012`, Dialysis Services
//! `…109.12.1013`, ESRD Monthly Outpatient Services `…109.12.1014`.

use serde_json::Value;

use crate::record::{systems, Code};

/// A VSAC value set: its name and OID, the checked subset of its expansion, and the
/// local (non-VSAC) codes accepted in its place.
#[derive(Debug)]
pub struct ValueSet {
    pub name: &'static str,
    pub oid: &'static str,
    pub codes: &'static [Code<'static>],
    pub local: &'static [Code<'static>],
}

/// The coding of a resource that matched a value set.
#[derive(Debug, Clone, Copy)]
pub struct Member<'v> {
    pub code: &'v str,
    pub display: Option<&'v str>,
    /// Matched one of the value set's `local` codes, not its VSAC expansion.
    pub local: bool,
}

impl<'v> Member<'v> {
    /// `Colonoscopy (73761001)`, with a note when the code is a local one.
    pub fn label(&self) -> String {
        let mut s = match self.display {
            Some(d) => format!("{d} ({})", self.code),
            None => self.code.to_string(),
        };
        if self.local {
            s.push_str(" [local code, not in the VSAC expansion]");
        }
        s
    }
}

impl ValueSet {
    /// The canonical URL the measure logic uses.
    pub fn url(&self) -> String {
        format!("http://cts.nlm.nih.gov/fhir/ValueSet/{}", self.oid)
    }

    /// The first coding of a CodeableConcept that is a member, VSAC codes before local.
    pub fn find<'v>(&self, concept: Option<&'v Value>) -> Option<Member<'v>> {
        let codings = concept?.get("coding")?.as_array()?;
        let lookup = |set: &[Code<'_>], local: bool| {
            codings.iter().find_map(|c| {
                let system = c.get("system")?.as_str()?;
                let code = c.get("code")?.as_str()?;
                set.iter()
                    .any(|k| k.system == system && k.code == code)
                    .then(|| Member {
                        code,
                        display: c.get("display").and_then(Value::as_str),
                        local,
                    })
            })
        };
        lookup(self.codes, false).or_else(|| lookup(self.local, true))
    }
}

/// A direct-reference code (or two) of the measure logic, which has no OID.
const fn direct(name: &'static str, codes: &'static [Code<'static>]) -> ValueSet {
    ValueSet {
        name,
        oid: "",
        codes,
        local: &[],
    }
}

const fn sct(code: &'static str) -> Code<'static> {
    Code::new(systems::SNOMED, code)
}
const fn loinc(code: &'static str) -> Code<'static> {
    Code::new(systems::LOINC, code)
}
const fn cpt(code: &'static str) -> Code<'static> {
    Code::new(systems::CPT, code)
}
const fn rxnorm(code: &'static str) -> Code<'static> {
    Code::new(systems::RXNORM, code)
}
const fn icd10(code: &'static str) -> Code<'static> {
    Code::new(systems::ICD10CM, code)
}

// ---- Qualifying encounters (library AdultOutpatientEncounters) ----

/// Office Visit. Synthea's ambulatory visit types are accepted as local codes (only on
/// encounters of class AMB, VR or HH; see `events::encounters`): without them no Synthea
/// patient has a qualifying encounter at all.
pub const OFFICE_VISIT: ValueSet = ValueSet {
    name: "Office Visit",
    oid: "2.16.840.1.113883.3.464.1003.101.12.1001",
    codes: &[
        cpt("99202"),
        cpt("99203"),
        cpt("99204"),
        cpt("99205"),
        cpt("99212"),
        cpt("99213"),
        cpt("99214"),
        cpt("99215"),
        sct("185463005"),
        sct("185464004"),
        sct("185465003"),
        sct("3391000175108"),
        sct("439740005"),
    ],
    local: &[
        sct("185349003"), // Encounter for check up
        sct("185345009"), // Encounter for symptom
        sct("185347001"), // Encounter for problem
        sct("162673000"), // General examination of patient
        sct("308335008"), // Patient encounter procedure
        sct("390906007"), // Follow-up encounter
        sct("698314001"), // Consultation for treatment
        sct("270427003"), // Patient-initiated encounter
        sct("394701000"), // Asthma follow-up
        sct("316744009"), // "Office Visit" as Synthea labels it
    ],
};

/// Annual Wellness Visit (SNOMED part complete; HCPCS G0438/G0439 not carried).
pub const ANNUAL_WELLNESS_VISIT: ValueSet = ValueSet {
    name: "Annual Wellness Visit",
    oid: "2.16.840.1.113883.3.526.3.1240",
    codes: &[sct("444971000124105"), sct("456201000124103")],
    local: &[],
};

/// Preventive Care Services Established Office Visit, 18 and Up (complete).
pub const PREVENTIVE_ESTABLISHED_18_UP: ValueSet = ValueSet {
    name: "Preventive Care Services Established Office Visit, 18 and Up",
    oid: "2.16.840.1.113883.3.464.1003.101.12.1025",
    codes: &[cpt("99395"), cpt("99396"), cpt("99397")],
    local: &[],
};

/// Preventive Care Services Initial Office Visit, 18 and Up (complete).
pub const PREVENTIVE_INITIAL_18_UP: ValueSet = ValueSet {
    name: "Preventive Care Services Initial Office Visit, 18 and Up",
    oid: "2.16.840.1.113883.3.464.1003.101.12.1023",
    codes: &[cpt("99385"), cpt("99386"), cpt("99387")],
    local: &[],
};

/// Home Healthcare Services (complete).
pub const HOME_HEALTHCARE_SERVICES: ValueSet = ValueSet {
    name: "Home Healthcare Services",
    oid: "2.16.840.1.113883.3.464.1003.101.12.1016",
    codes: &[
        cpt("99341"),
        cpt("99342"),
        cpt("99344"),
        cpt("99345"),
        cpt("99347"),
        cpt("99348"),
        cpt("99349"),
        cpt("99350"),
        sct("185460008"),
        sct("185462000"),
        sct("185466002"),
        sct("185467006"),
        sct("185468001"),
        sct("185470005"),
        sct("225929007"),
        sct("315205008"),
        sct("439708006"),
        sct("698704008"),
        sct("704126008"),
    ],
    local: &[],
};

/// The value sets whose encounters qualify a patient for all four measures.
pub const QUALIFYING_ENCOUNTERS: [&ValueSet; 5] = [
    &OFFICE_VISIT,
    &ANNUAL_WELLNESS_VISIT,
    &PREVENTIVE_ESTABLISHED_18_UP,
    &PREVENTIVE_INITIAL_18_UP,
    &HOME_HEALTHCARE_SERVICES,
];

// ---- Diagnoses and results of the numerators and initial populations ----

/// Diabetes (SNOMED subset; the expansion also holds ICD-10-CM E10–E13).
pub const DIABETES: ValueSet = ValueSet {
    name: "Diabetes",
    oid: "2.16.840.1.113883.3.464.1003.103.12.1001",
    codes: &[
        sct("44054006"),
        sct("46635009"),
        sct("313435000"),
        sct("313436004"),
        sct("81531005"),
        sct("359642000"),
        sct("237599002"),
        sct("190331003"),
        sct("421847006"),
        sct("422034002"),
        sct("420279001"),
    ],
    local: &[],
};

/// HbA1c Laboratory Test (complete).
pub const HBA1C_LABORATORY_TEST: ValueSet = ValueSet {
    name: "HbA1c Laboratory Test",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1013",
    codes: &[
        loinc("4548-4"),
        loinc("17855-8"),
        loinc("17856-6"),
        loinc("4549-2"),
        loinc("96595-4"),
    ],
    local: &[],
};

/// Essential Hypertension (subset). Synthea's older records code hypertension as
/// 38341003 (Hypertensive disorder), which the value set leaves out: a local code.
pub const ESSENTIAL_HYPERTENSION: ValueSet = ValueSet {
    name: "Essential Hypertension",
    oid: "2.16.840.1.113883.3.464.1003.104.12.1011",
    codes: &[
        icd10("I10"),
        sct("59621000"),
        sct("1201005"),
        sct("19769006"),
        sct("371125006"),
        sct("429457004"),
        sct("46481004"),
        sct("78975002"),
    ],
    local: &[sct("38341003")],
};

/// Mammography (subset; LOINC only, as the expansion).
pub const MAMMOGRAPHY: ValueSet = ValueSet {
    name: "Mammography",
    oid: "2.16.840.1.113883.3.464.1003.108.12.1018",
    codes: &[
        loinc("24604-1"),
        loinc("24605-8"),
        loinc("24606-6"),
        loinc("24610-8"),
        loinc("26175-0"),
        loinc("26176-8"),
        loinc("26177-6"),
        loinc("26346-7"),
        loinc("36319-2"),
        loinc("39152-4"),
        loinc("39153-2"),
        loinc("42174-3"),
        loinc("46356-2"),
        loinc("72137-3"),
        loinc("72138-1"),
        loinc("72139-9"),
        loinc("72140-7"),
        loinc("72141-5"),
        loinc("72142-3"),
        loinc("86462-9"),
        loinc("86463-7"),
    ],
    local: &[],
};

/// Bilateral Mastectomy (SNOMED part complete).
pub const BILATERAL_MASTECTOMY: ValueSet = ValueSet {
    name: "Bilateral Mastectomy",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1005",
    codes: &[
        sct("52314009"),
        sct("22418005"),
        sct("27865001"),
        sct("17086001"),
        sct("76468001"),
        sct("456903003"),
        sct("726636007"),
        sct("14693006"),
        sct("14714006"),
        sct("60633004"),
        sct("836436008"),
        sct("1268980002"),
        sct("1269061009"),
        sct("1279986002"),
        sct("870629001"),
    ],
    local: &[],
};

/// Colonoscopy (SNOMED part complete, CPT subset).
pub const COLONOSCOPY: ValueSet = ValueSet {
    name: "Colonoscopy",
    oid: "2.16.840.1.113883.3.464.1003.108.12.1020",
    codes: &[
        sct("73761001"),
        sct("367535003"),
        sct("444783004"),
        sct("235150006"),
        sct("25732003"),
        sct("174185007"),
        sct("275251008"),
        sct("1209098000"),
        sct("12350003"),
        sct("174158000"),
        sct("302052009"),
        sct("443998000"),
        sct("446521004"),
        sct("446745002"),
        sct("447021001"),
        sct("709421007"),
        sct("710293001"),
        sct("711307001"),
        sct("789778002"),
        sct("8180007"),
        cpt("45378"),
        cpt("45380"),
        cpt("45384"),
        cpt("45385"),
        cpt("44388"),
    ],
    local: &[],
};

/// Flexible Sigmoidoscopy (SNOMED part complete, CPT subset).
pub const FLEXIBLE_SIGMOIDOSCOPY: ValueSet = ValueSet {
    name: "Flexible Sigmoidoscopy",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1010",
    codes: &[
        sct("44441009"),
        sct("396226005"),
        sct("1217117008"),
        cpt("45330"),
        cpt("45331"),
        cpt("45333"),
        cpt("45338"),
    ],
    local: &[],
};

/// CT Colonography (complete).
pub const CT_COLONOGRAPHY: ValueSet = ValueSet {
    name: "CT Colonography",
    oid: "2.16.840.1.113883.3.464.1003.108.12.1038",
    codes: &[
        loinc("60515-4"),
        loinc("72531-7"),
        loinc("79069-1"),
        loinc("79071-7"),
        loinc("79101-2"),
        loinc("82688-3"),
    ],
    local: &[],
};

/// Fecal Occult Blood Test (FOBT) (complete).
pub const FOBT: ValueSet = ValueSet {
    name: "Fecal Occult Blood Test (FOBT)",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1011",
    codes: &[
        loinc("2335-8"),
        loinc("12503-9"),
        loinc("12504-7"),
        loinc("14563-1"),
        loinc("14564-9"),
        loinc("14565-6"),
        loinc("27396-1"),
        loinc("27401-9"),
        loinc("27925-7"),
        loinc("27926-5"),
        loinc("29771-3"),
        loinc("56490-6"),
        loinc("56491-4"),
        loinc("57905-2"),
        loinc("58453-2"),
        loinc("80372-6"),
    ],
    local: &[],
};

/// sDNA FIT Test (complete).
pub const SDNA_FIT_TEST: ValueSet = ValueSet {
    name: "sDNA FIT Test",
    oid: "2.16.840.1.113883.3.464.1003.108.12.1039",
    codes: &[loinc("77353-1"), loinc("77354-9")],
    local: &[],
};

/// Malignant Neoplasm of Colon (SNOMED subset).
pub const MALIGNANT_NEOPLASM_OF_COLON: ValueSet = ValueSet {
    name: "Malignant Neoplasm of Colon",
    oid: "2.16.840.1.113883.3.464.1003.108.12.1001",
    codes: &[
        sct("93761005"),
        sct("363406005"),
        sct("363510005"),
        sct("363351006"),
        sct("93683002"),
        sct("93771007"),
        sct("93984006"),
        sct("94006002"),
        sct("94105000"),
        sct("94260004"),
        sct("285312008"),
        sct("301756000"),
        sct("312111009"),
        sct("312112002"),
        sct("312113007"),
        sct("429084005"),
        sct("429699009"),
    ],
    local: &[],
};

/// Total Colectomy (SNOMED part complete, CPT subset).
pub const TOTAL_COLECTOMY: ValueSet = ValueSet {
    name: "Total Colectomy",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1019",
    codes: &[
        sct("26390003"),
        sct("303401008"),
        sct("307666008"),
        sct("307667004"),
        sct("307669001"),
        sct("31130001"),
        sct("36192008"),
        sct("44751009"),
        sct("456004"),
        sct("713165008"),
        sct("787108001"),
        sct("787109009"),
        sct("787874000"),
        sct("787875004"),
        sct("787876003"),
        sct("80294005"),
        sct("858579005"),
        cpt("44150"),
        cpt("44151"),
        cpt("44155"),
        cpt("44156"),
        cpt("44157"),
        cpt("44158"),
        cpt("44210"),
        cpt("44211"),
        cpt("44212"),
    ],
    local: &[],
};

/// Pregnancy (SNOMED subset; the expansion is mostly ICD-10-CM O and Z3A codes).
pub const PREGNANCY: ValueSet = ValueSet {
    name: "Pregnancy",
    oid: "2.16.840.1.113883.3.526.3.378",
    codes: &[
        sct("72892002"),
        sct("77386006"),
        sct("57630001"),
        sct("59466002"),
        sct("41587001"),
        sct("47200007"),
        sct("237239003"),
        sct("65727000"),
        sct("65147003"),
        sct("87527008"),
    ],
    local: &[],
};

/// End Stage Renal Disease (complete).
pub const END_STAGE_RENAL_DISEASE: ValueSet = ValueSet {
    name: "End Stage Renal Disease",
    oid: "2.16.840.1.113883.3.526.3.353",
    codes: &[
        icd10("N18.6"),
        sct("46177005"),
        sct("236434000"),
        sct("236435004"),
        sct("236436003"),
    ],
    local: &[],
};

// ---- Exclusions shared by the measures (libraries Hospice, PalliativeCare,
// AdvancedIllnessandFrailty) ----

/// Encounter Inpatient (complete).
pub const ENCOUNTER_INPATIENT: ValueSet = ValueSet {
    name: "Encounter Inpatient",
    oid: "2.16.840.1.113883.3.666.5.307",
    codes: &[sct("183452005"), sct("32485007"), sct("8715000")],
    local: &[],
};

/// Hospice Encounter (SNOMED part complete; HCPCS not carried).
pub const HOSPICE_ENCOUNTER: ValueSet = ValueSet {
    name: "Hospice Encounter",
    oid: "2.16.840.1.113883.3.464.1003.1003",
    codes: &[
        sct("183919006"),
        sct("183920000"),
        sct("183921001"),
        sct("305336008"),
        sct("305911006"),
        sct("385765002"),
    ],
    local: &[],
};

/// Hospice Care Ambulatory (complete but for HCPCS G0182).
pub const HOSPICE_CARE_AMBULATORY: ValueSet = ValueSet {
    name: "Hospice Care Ambulatory",
    oid: "2.16.840.1.113883.3.526.3.1584",
    codes: &[
        cpt("99377"),
        cpt("99378"),
        sct("170935008"),
        sct("170936009"),
        sct("385763009"),
    ],
    local: &[],
};

/// Discharge dispositions that mean hospice (direct-reference codes of library Hospice).
pub const HOSPICE_DISCHARGE: ValueSet = direct(
    "Discharge to home or to a healthcare facility for hospice care",
    &[sct("428371000124100"), sct("428361000124107")],
);
/// Hospice care [Minimum Data Set], an assessment answered Yes.
pub const HOSPICE_CARE_MDS: ValueSet =
    direct("Hospice care [Minimum Data Set]", &[loinc("45755-6")]);
pub const YES: ValueSet = direct("Yes (qualifier value)", &[sct("373066001")]);

/// Palliative Care Encounter (SNOMED part complete).
pub const PALLIATIVE_CARE_ENCOUNTER: ValueSet = ValueSet {
    name: "Palliative Care Encounter",
    oid: "2.16.840.1.113883.3.464.1003.101.12.1090",
    codes: &[
        sct("305284002"),
        sct("305381007"),
        sct("305686008"),
        sct("305824005"),
        sct("441874000"),
        sct("4901000124101"),
        sct("713281006"),
    ],
    local: &[],
};

/// Palliative Care Intervention (complete).
pub const PALLIATIVE_CARE_INTERVENTION: ValueSet = ValueSet {
    name: "Palliative Care Intervention",
    oid: "2.16.840.1.113883.3.464.1003.198.12.1135",
    codes: &[
        sct("103735009"),
        sct("105402000"),
        sct("1841000124106"),
        sct("395669003"),
        sct("395670002"),
        sct("395694002"),
        sct("395695001"),
        sct("433181000124107"),
        sct("443761007"),
    ],
    local: &[],
};

/// Functional Assessment of Chronic Illness Therapy - Palliative Care Questionnaire.
pub const FACIT_PAL: ValueSet = direct(
    "Functional Assessment of Chronic Illness Therapy - Palliative Care Questionnaire (FACIT-Pal)",
    &[loinc("71007-9")],
);

/// Frailty Device (subset).
pub const FRAILTY_DEVICE: ValueSet = ValueSet {
    name: "Frailty Device",
    oid: "2.16.840.1.113883.3.464.1003.118.12.1300",
    codes: &[
        sct("266731002"),
        sct("466986006"),
        sct("1255320005"),
        sct("360006004"),
        sct("228869008"),
        sct("23366006"),
        sct("183240000"),
        sct("261323006"),
        sct("336608004"),
        sct("360008003"),
    ],
    local: &[],
};

/// Medical equipment used (the assessment whose answer can be a frailty device).
pub const MEDICAL_EQUIPMENT_USED: ValueSet = direct("Medical equipment used", &[loinc("98181-1")]);

/// Frailty Diagnosis (SNOMED subset).
pub const FRAILTY_DIAGNOSIS: ValueSet = ValueSet {
    name: "Frailty Diagnosis",
    oid: "2.16.840.1.113883.3.464.1003.113.12.1074",
    codes: &[
        sct("217082002"),
        sct("33036003"),
        sct("40104005"),
        sct("428484005"),
        sct("52702003"),
        sct("225562005"),
        sct("92341000119107"),
    ],
    local: &[],
};

/// Advanced Illness (a small SNOMED subset of a large expansion; Alzheimer codes such as
/// Synthea's 230265002 could not be checked and are left out).
pub const ADVANCED_ILLNESS: ValueSet = ValueSet {
    name: "Advanced Illness",
    oid: "2.16.840.1.113883.3.464.1003.110.12.1082",
    codes: &[
        sct("94260004"),
        sct("94297009"),
        sct("94313005"),
        sct("94327000"),
    ],
    local: &[],
};

/// Dementia Medications (complete).
pub const DEMENTIA_MEDICATIONS: ValueSet = ValueSet {
    name: "Dementia Medications",
    oid: "2.16.840.1.113883.3.464.1003.196.12.1510",
    codes: &[
        rxnorm("1100184"),
        rxnorm("1308569"),
        rxnorm("1599803"),
        rxnorm("1599805"),
        rxnorm("1805420"),
        rxnorm("1805425"),
        rxnorm("1858970"),
        rxnorm("310436"),
        rxnorm("310437"),
        rxnorm("312835"),
        rxnorm("312836"),
        rxnorm("314214"),
        rxnorm("314215"),
        rxnorm("579148"),
        rxnorm("725021"),
        rxnorm("725023"),
        rxnorm("860695"),
        rxnorm("860707"),
        rxnorm("860715"),
        rxnorm("860901"),
        rxnorm("996561"),
        rxnorm("996571"),
        rxnorm("996572"),
        rxnorm("996594"),
        rxnorm("996603"),
        rxnorm("996609"),
        rxnorm("996615"),
        rxnorm("996624"),
        rxnorm("996740"),
        rxnorm("997220"),
        rxnorm("997223"),
        rxnorm("997226"),
        rxnorm("997229"),
    ],
    local: &[],
};

/// Housing status, answered "Lives in a nursing home" (library AdvancedIllnessandFrailty).
pub const HOUSING_STATUS: ValueSet = direct("Housing status", &[loinc("71802-3")]);
pub const LIVES_IN_NURSING_HOME: ValueSet =
    direct("Lives in a nursing home (finding)", &[sct("160734000")]);

/// Blood pressure components (direct-reference codes of CMS165).
pub const SYSTOLIC_BP: ValueSet = direct("Systolic blood pressure", &[loinc("8480-6")]);
pub const DIASTOLIC_BP: ValueSet = direct("Diastolic blood pressure", &[loinc("8462-4")]);
