//! The codes the scores look for, in one place so a reader can check them: conditions
//! (SNOMED CT, and ICD-10-CM by prefix, as real records carry both), antihypertensive
//! medicines (RxNorm), smoking status answers (SNOMED CT) and the race extension.
//!
//! A criterion counts when an *active* Condition on the date carries one of these codes
//! (see [`crate::Record::active_conditions`]). ICD-10-CM codes match by prefix with the dot
//! ignored (`I48` matches `I48.91` and `I4891`), because the classification nests its
//! codes that way and records carry either spelling.

use serde_json::Value;
use time::Date;

use crate::record::{systems, Code, Dated, Record};

/// A named group of condition codes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConditionSet {
    /// Plain words for the criterion (`Diabetes`).
    pub name: &'static str,
    pub snomed: &'static [&'static str],
    /// ICD-10-CM prefixes, without dots.
    pub icd10cm: &'static [&'static str],
}

impl ConditionSet {
    /// The active Conditions of this set on `on`, oldest first.
    pub fn active<'a>(&self, record: &Record<'a>, on: Date) -> Vec<Dated<'a, &'a Value>> {
        let mut codes: Vec<Code<'_>> = self
            .snomed
            .iter()
            .map(|c| Code::new(systems::SNOMED, c))
            .collect();
        // Prefix matching is done here (record.rs matches exact codes): every ICD-10-CM
        // code in the record that falls under a prefix joins the exact-code lookup, so
        // the active/abated/refuted logic stays the record's.
        for condition in record.of_type("Condition") {
            for coding in codings(condition.get("code")) {
                let system = coding.get("system").and_then(Value::as_str);
                let code = coding.get("code").and_then(Value::as_str);
                if let (Some(systems::ICD10CM), Some(code)) = (system, code) {
                    let bare = code.replace('.', "");
                    if self.icd10cm.iter().any(|p| bare.starts_with(p)) {
                        codes.push(Code::new(systems::ICD10CM, code));
                    }
                }
            }
        }
        record.active_conditions(&codes, on)
    }
}

/// The codings of a CodeableConcept.
pub(crate) fn codings(concept: Option<&Value>) -> impl Iterator<Item = &Value> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A CodeableConcept in words: its text, else the first coding's display, else its code.
pub(crate) fn concept_words(concept: Option<&Value>) -> Option<String> {
    let concept = concept?;
    if let Some(text) = concept.get("text").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    codings(Some(concept)).find_map(|c| {
        c.get("display")
            .or_else(|| c.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// Atrial fibrillation, the condition CHA₂DS₂-VASc is for: atrial fibrillation
/// (49436004), paroxysmal (282825002), persistent (440059007), permanent (440028005),
/// chronic (426749004), rapid (314208002); ICD-10-CM I48.0 paroxysmal, I48.1 persistent,
/// I48.2 chronic/permanent, I48.91 unspecified. Atrial flutter (I48.3, I48.4, I48.92)
/// is left out: the score was derived in atrial fibrillation.
pub(crate) const ATRIAL_FIBRILLATION: ConditionSet = ConditionSet {
    name: "Atrial fibrillation",
    snomed: &[
        "49436004",
        "282825002",
        "440059007",
        "440028005",
        "426749004",
        "314208002",
    ],
    icd10cm: &["I480", "I481", "I482", "I4891"],
};

/// Congestive heart failure or left ventricular dysfunction: congestive heart failure
/// (42343007), heart failure (84114007), chronic congestive heart failure (88805009, the
/// code Synthea uses), left heart failure (85232009), heart failure with reduced
/// (703272007) or normal (446221000) ejection fraction, left ventricular systolic
/// dysfunction (134401001); ICD-10-CM I50, I11.0, I13.0, I13.2.
pub(crate) const HEART_FAILURE: ConditionSet = ConditionSet {
    name: "Congestive heart failure",
    snomed: &[
        "42343007",
        "84114007",
        "88805009",
        "85232009",
        "703272007",
        "446221000",
        "134401001",
    ],
    icd10cm: &["I50", "I110", "I130", "I132"],
};

/// Hypertension: hypertensive disorder (38341003), essential hypertension (59621000, the
/// code current Synthea uses), benign essential hypertension (1201005), secondary
/// hypertension (31992008); ICD-10-CM I10–I13, I15, I16.
pub(crate) const HYPERTENSION: ConditionSet = ConditionSet {
    name: "Hypertension",
    snomed: &["38341003", "59621000", "1201005", "31992008"],
    icd10cm: &["I10", "I11", "I12", "I13", "I15", "I16"],
};

/// Diabetes mellitus: type 2 (44054006, the code Synthea uses), type 1 (46635009),
/// unspecified (73211009); ICD-10-CM E08–E11, E13. Prediabetes (15777000, R73.03) is
/// not diabetes and is left out.
pub(crate) const DIABETES: ConditionSet = ConditionSet {
    name: "Diabetes",
    snomed: &["44054006", "46635009", "73211009"],
    icd10cm: &["E08", "E09", "E10", "E11", "E13"],
};

/// Prior stroke, transient ischaemic attack or (arterial) thromboembolism: stroke
/// (230690007), ischaemic stroke (422504002), embolic stroke (371041009), cerebral
/// infarction (432504007), history of stroke (275526006), TIA (266257000); ICD-10-CM I63
/// cerebral infarction, G45 TIA except G45.4 (transient global amnesia), Z86.73 history
/// of TIA or cerebral infarction, I74 arterial embolism and thrombosis. Venous
/// thromboembolism is not this criterion.
pub(crate) const STROKE_TIA_THROMBOEMBOLISM: ConditionSet = ConditionSet {
    name: "Stroke, TIA or thromboembolism",
    snomed: &[
        "230690007",
        "422504002",
        "371041009",
        "432504007",
        "275526006",
        "266257000",
    ],
    icd10cm: &[
        "I63", "G450", "G451", "G452", "G458", "G459", "Z8673", "I74",
    ],
};

/// Vascular disease as Lip 2010 defines it — prior myocardial infarction, peripheral
/// artery disease, aortic plaque: myocardial infarction (22298006), history of MI
/// (399211009), STEMI (401303003), NSTEMI (401314000), old MI (1755008), peripheral
/// arterial occlusive disease (399957001), peripheral arterial disease (840580004);
/// ICD-10-CM I21, I22, I25.2 (old MI), I70 (atherosclerosis, aorta and limbs), I73.9.
/// Coronary disease without infarction (53741008) is not in the original definition.
pub(crate) const VASCULAR_DISEASE: ConditionSet = ConditionSet {
    name: "Vascular disease (prior MI, peripheral artery disease, aortic plaque)",
    snomed: &[
        "22298006",
        "399211009",
        "401303003",
        "401314000",
        "1755008",
        "399957001",
        "840580004",
    ],
    icd10cm: &["I21", "I22", "I252", "I70", "I739"],
};

/// Clinical atherosclerotic cardiovascular disease, which puts a patient outside the
/// pooled cohort equations (they estimate a *first* event, Goff 2013 §4): myocardial
/// infarction codes as in [`VASCULAR_DISEASE`], coronary heart disease (53741008),
/// ischaemic heart disease (414545008), angina (194828000), stroke and TIA codes as in
/// [`STROKE_TIA_THROMBOEMBOLISM`] but not other thromboembolism, peripheral arterial
/// disease (399957001, 840580004); ICD-10-CM I20–I25, I63, G45 (not G45.4), Z86.73,
/// I70.2 (limb atherosclerosis), I73.9, Z95.1 (bypass graft), Z95.5 (coronary stent).
pub(crate) const CLINICAL_ASCVD: ConditionSet = ConditionSet {
    name: "Clinical atherosclerotic cardiovascular disease",
    snomed: &[
        "22298006",
        "399211009",
        "401303003",
        "401314000",
        "1755008",
        "53741008",
        "414545008",
        "194828000",
        "230690007",
        "422504002",
        "371041009",
        "432504007",
        "275526006",
        "266257000",
        "399957001",
        "840580004",
    ],
    icd10cm: &[
        "I20", "I21", "I22", "I23", "I24", "I25", "I63", "G450", "G451", "G452", "G458", "G459",
        "Z8673", "I702", "I739", "Z951", "Z955",
    ],
};

/// Antihypertensive medicines, as RxNorm ingredients (with the ingredient's name) —
/// thiazide-type diuretics, ACE inhibitors, angiotensin receptor blockers, calcium channel
/// blockers, beta blockers, mineralocorticoid antagonists, alpha blockers, central and
/// direct vasodilators. Minoxidil is left out: its name also matches the hair-loss foam.
pub(crate) const ANTIHYPERTENSIVE_INGREDIENTS: &[(&str, &str)] = &[
    ("5487", "hydrochlorothiazide"),
    ("2409", "chlorthalidone"),
    ("5764", "indapamide"),
    ("29046", "lisinopril"),
    ("3827", "enalapril"),
    ("35296", "ramipril"),
    ("18867", "benazepril"),
    ("1998", "captopril"),
    ("52175", "losartan"),
    ("69749", "valsartan"),
    ("83818", "irbesartan"),
    ("214354", "candesartan"),
    ("321064", "olmesartan"),
    ("73494", "telmisartan"),
    ("1091643", "azilsartan"),
    ("17767", "amlodipine"),
    ("7417", "nifedipine"),
    ("4316", "felodipine"),
    ("3443", "diltiazem"),
    ("11170", "verapamil"),
    ("6918", "metoprolol"),
    ("1202", "atenolol"),
    ("20352", "carvedilol"),
    ("19484", "bisoprolol"),
    ("31555", "nebivolol"),
    ("6185", "labetalol"),
    ("8787", "propranolol"),
    ("9997", "spironolactone"),
    ("298869", "eplerenone"),
    ("49276", "doxazosin"),
    ("2599", "clonidine"),
    ("6876", "methyldopa"),
    ("5470", "hydralazine"),
];

/// Clinical drugs (RxNorm SCD/SCDC) that Synthea prescribes for hypertension and the
/// ingredient codes above do not catch: hydrochlorothiazide 25 mg (316049, 310798) and
/// 6.25 mg (316052), amlodipine 2.5 mg (308136) and 5 mg (197361), lisinopril 10 mg
/// (314076), metoprolol succinate 100 mg extended release (866412).
pub(crate) const ANTIHYPERTENSIVE_DRUGS: &[&str] = &[
    "316049", "310798", "316052", "308136", "197361", "314076", "866412",
];

/// An *active* MedicationRequest for an antihypertensive on `on` (authored on or before
/// `on`): by RxNorm code, ingredient or clinical drug, or — because a list of clinical
/// drug codes is never complete — by an ingredient's name in the coding display or the
/// concept text (`lisinopril 20 MG Oral Tablet`). Returns the request and the medicine
/// in words. The status is the request's status now: for a date in the past, a request
/// stopped since then counts as not active. A request naming its medicine by
/// `medicationReference` is not read (the Medication is outside the patient's
/// compartment).
pub(crate) fn active_antihypertensive<'a>(
    record: &Record<'a>,
    on: Date,
) -> Option<(&'a Value, String)> {
    record
        .of_type("MedicationRequest")
        .filter(|m| m.get("status").and_then(Value::as_str) == Some("active"))
        .filter(|m| crate::record::date_of(m, &["authoredOn"]).is_none_or(|d| d <= on))
        .find_map(|m| {
            let concept = m.get("medicationCodeableConcept");
            let by_code = codings(concept).any(|c| {
                c.get("system").and_then(Value::as_str) == Some(systems::RXNORM)
                    && c.get("code").and_then(Value::as_str).is_some_and(|code| {
                        ANTIHYPERTENSIVE_DRUGS.contains(&code)
                            || ANTIHYPERTENSIVE_INGREDIENTS.iter().any(|(c, _)| *c == code)
                    })
            });
            let words = concept_words(concept).unwrap_or_default();
            let by_name = {
                let mut names = codings(concept)
                    .filter_map(|c| c.get("display").and_then(Value::as_str))
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>();
                names.push(words.to_lowercase());
                names.iter().any(|n| {
                    ANTIHYPERTENSIVE_INGREDIENTS
                        .iter()
                        .any(|(_, name)| n.contains(name))
                })
            };
            (by_code || by_name).then_some((m, words))
        })
}

/// LOINC 72166-2, tobacco smoking status.
pub(crate) const SMOKING_STATUS: &str = "72166-2";

/// Smoking status answers (SNOMED CT, the US Core smoking status value set) read as a
/// current smoker: current every day (449868002), current some day (428041000124106),
/// smoker (77176002 — US Core displays it "Smoker, current status unknown"; the concept
/// is "smoker", so it counts), current heavy (428071000124103) and light
/// (428061000124105) tobacco smoker.
pub(crate) const CURRENT_SMOKER: &[&str] = &[
    "449868002",
    "428041000124106",
    "77176002",
    "428071000124103",
    "428061000124105",
];

/// Answers read as *not* a current smoker: former smoker (8517006), never smoker
/// (266919005). Anything else — "unknown if ever smoked" (266927001) or an answer not
/// listed — says nothing, and the status counts as missing.
pub(crate) const NOT_CURRENT_SMOKER: &[&str] = &["8517006", "266919005"];

/// The US Core race extension and the OMB category the guideline's African-American
/// equations are for (CDC Race & Ethnicity code 2054-5, Black or African American).
pub(crate) const US_CORE_RACE: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
pub(crate) const CDC_RACE_SYSTEM: &str = "urn:oid:2.16.840.1.113883.6.238";
pub(crate) const BLACK_OR_AFRICAN_AMERICAN: &str = "2054-5";
