//! Appointment booking from free Slots (`Records::bookable_slots`, `book`, `cancel`,
//! `reschedule`, `confirm`, `decline`) on both backends: SQLite in a temporary directory,
//! PostgreSQL in a schema of its own per test (`OXEHR_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; unreachable outside CI: skipped).
//!
//! The expectations come from the fixture as this file writes it (which organization
//! cares for which patient, which Schedule belongs to whom, each Slot's status and
//! time) and from the booking rules as `docs/scheduling.md` states them, never from the
//! code's own answers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use oxehr_auth::{parse_scopes, Role};
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_records::{
    format_instant, now_micros, query, Caller, Category, Records, RecordsConfig, RecordsError,
    REQUIRES_CONFIRMATION_URL,
};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Records over a fresh store; dropping it removes the store (PostgreSQL: the schema).
struct Fixture {
    records: Records,
    _store: common::TestStore,
    /// A whole hour, a day from now: the fixture's Slots start at offsets from it.
    base: i64,
}

fn open(backend: Backend) -> Option<Fixture> {
    let t = common::open_store(matches!(backend, Backend::Postgres), "booking")?;
    let store = t.store.clone();
    let records = Records::new(store, RecordsConfig::default());
    let base = (now_micros() / HOUR + 1) * HOUR + DAY;
    let f = Fixture {
        records,
        _store: t,
        base,
    };
    f.directory();
    Some(f)
}

fn rtype(t: &str) -> ResourceType {
    ResourceType::parse(t).expect("type")
}

fn rid(id: &str) -> ResourceId {
    ResourceId::parse(id).expect("id")
}

fn patient(id: &str) -> Caller {
    Caller::new(
        format!("user-{id}"),
        Role::Patient,
        None,
        Some(format!("Patient/{id}")),
        Some(id.to_owned()),
        &parse_scopes("patient/*.cruds").expect("scopes"),
    )
}

fn staff(user: &str, role: Role, org: &str) -> Caller {
    Caller::new(
        user.to_owned(),
        role,
        Some(org.to_owned()),
        None,
        None,
        &parse_scopes("user/*.cruds").expect("scopes"),
    )
}

/// Patients in organization A's care (their managing organization).
const PATIENTS_OF_A: usize = 16;

fn p(n: usize) -> String {
    format!("p{n}")
}

/// One Slot of the fixture and what the rules say about it.
struct SlotRow {
    id: &'static str,
    schedule: &'static str,
    /// Start, as hours after `base` (negative: before now).
    hours: i64,
    status: &'static str,
    /// Offered to organization A's care team (and staff) in a 120-day window.
    for_a: bool,
    /// Offered to organization B's.
    for_b: bool,
}

const SLOTS: &[SlotRow] = &[
    SlotRow {
        id: "s-a1",
        schedule: "sched-a",
        hours: 2,
        status: "free",
        for_a: true,
        for_b: false,
    },
    SlotRow {
        id: "s-a2",
        schedule: "sched-a",
        hours: 1,
        status: "free",
        for_a: true,
        for_b: false,
    },
    SlotRow {
        id: "s-busy",
        schedule: "sched-a",
        hours: 3,
        status: "busy",
        for_a: false,
        for_b: false,
    },
    // Two days before `base`: yesterday.
    SlotRow {
        id: "s-past",
        schedule: "sched-a",
        hours: -48,
        status: "free",
        for_a: false,
        for_b: false,
    },
    // 30 days ahead: inside the 90-day window.
    SlotRow {
        id: "s-late",
        schedule: "sched-a",
        hours: 30 * 24,
        status: "free",
        for_a: true,
        for_b: false,
    },
    // 100 days ahead: past the 90-day window however far one asks.
    SlotRow {
        id: "s-far",
        schedule: "sched-a",
        hours: 100 * 24,
        status: "free",
        for_a: false,
        for_b: false,
    },
    SlotRow {
        id: "s-hs",
        schedule: "sched-hs",
        hours: 4,
        status: "free",
        for_a: true,
        for_b: false,
    },
    SlotRow {
        id: "s-hs2",
        schedule: "sched-hs",
        hours: 6,
        status: "free",
        for_a: true,
        for_b: false,
    },
    SlotRow {
        id: "s-loc",
        schedule: "sched-loc",
        hours: 5,
        status: "free",
        for_a: true,
        for_b: false,
    },
    SlotRow {
        id: "s-b",
        schedule: "sched-b",
        hours: 1,
        status: "free",
        for_a: false,
        for_b: true,
    },
    SlotRow {
        id: "s-off",
        schedule: "sched-off",
        hours: 2,
        status: "free",
        for_a: false,
        for_b: false,
    },
    SlotRow {
        id: "s-doc",
        schedule: "sched-doc",
        hours: 2,
        status: "free",
        for_a: false,
        for_b: false,
    },
];

impl Fixture {
    fn put(&self, r: Value) {
        let t = rtype(r["resourceType"].as_str().expect("type"));
        let id = rid(r["id"].as_str().expect("id"));
        self.records
            .update(&Caller::server(), &t, &id, r, None)
            .unwrap_or_else(|e| panic!("PUT {t}/{id}: {e}"));
    }

    fn at(&self, hours: i64) -> i64 {
        self.base + hours * HOUR
    }

    fn slot(&self, id: &str, schedule: &str, start: i64, status: &str) {
        self.put(json!({"resourceType": "Slot", "id": id, "status": status,
            "schedule": {"reference": format!("Schedule/{schedule}")},
            "start": format_instant(start), "end": format_instant(start + HOUR / 2)}));
    }

    /// Two organizations, their practitioners, services, locations and Schedules; the
    /// patients; the Slots of [`SLOTS`].
    fn directory(&self) {
        for (id, name) in [
            ("org-a", "Riverside Clinic"),
            ("org-b", "Hillside Practice"),
        ] {
            self.put(json!({"resourceType": "Organization", "id": id, "name": name}));
        }
        self.put(json!({"resourceType": "Practitioner", "id": "doc-a",
            "name": [{"prefix": ["Dr"], "given": ["Ada"], "family": "Lovelace"}]}));
        self.put(json!({"resourceType": "Practitioner", "id": "doc-b",
            "name": [{"text": "Dr Bo Berg"}]}));
        self.put(
            json!({"resourceType": "Location", "id": "loc-a", "name": "Room 4",
            "managingOrganization": {"reference": "Organization/org-a"}}),
        );
        self.put(
            json!({"resourceType": "Location", "id": "loc-x", "name": "Day unit",
            "managingOrganization": {"reference": "Organization/org-a"}}),
        );
        self.put(json!({"resourceType": "PractitionerRole", "id": "role-a",
            "practitioner": {"reference": "Practitioner/doc-a"},
            "organization": {"reference": "Organization/org-a"},
            "location": [{"reference": "Location/loc-a"}]}));
        self.put(json!({"resourceType": "PractitionerRole", "id": "role-b",
            "practitioner": {"reference": "Practitioner/doc-b"},
            "organization": {"reference": "Organization/org-b"}}));
        self.put(
            json!({"resourceType": "HealthcareService", "id": "hs-a", "name": "Flu clinic",
            "providedBy": {"reference": "Organization/org-a"}}),
        );
        let schedule = |id: &str, actor: &str| {
            json!({"resourceType": "Schedule", "id": id,
                "actor": [{"reference": actor}]})
        };
        self.put(schedule("sched-a", "PractitionerRole/role-a"));
        let mut hs = schedule("sched-hs", "HealthcareService/hs-a");
        hs["extension"] = json!([{"url": REQUIRES_CONFIRMATION_URL, "valueBoolean": true}]);
        self.put(hs);
        self.put(schedule("sched-loc", "Location/loc-x"));
        self.put(schedule("sched-b", "PractitionerRole/role-b"));
        let mut off = schedule("sched-off", "PractitionerRole/role-a");
        off["active"] = json!(false);
        self.put(off);
        self.put(schedule("sched-doc", "Practitioner/doc-a"));
        for n in 1..=PATIENTS_OF_A {
            self.put(json!({"resourceType": "Patient", "id": p(n),
                "managingOrganization": {"reference": "Organization/org-a"}}));
        }
        self.put(json!({"resourceType": "Patient", "id": "p-b",
            "managingOrganization": {"reference": "Organization/org-b"}}));
        // A patient of organization A whom organization B has seen too: both care for
        // them, so B's staff may see their record (but not act on A's Schedules).
        self.put(json!({"resourceType": "Patient", "id": "p-ab",
            "managingOrganization": {"reference": "Organization/org-a"}}));
        self.put(
            json!({"resourceType": "Encounter", "id": "enc-ab", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p-ab"},
            "serviceProvider": {"reference": "Organization/org-b"}}),
        );
        for s in SLOTS {
            let start = if s.id == "s-past" {
                now_micros() - 2 * HOUR
            } else {
                self.at(s.hours)
            };
            self.slot(s.id, s.schedule, start, s.status);
        }
    }

    /// The stored resource as the server reads it.
    fn current(&self, t: &str, id: &str) -> (u64, Value) {
        let r = self
            .records
            .read(&Caller::server(), &rtype(t), &rid(id))
            .unwrap_or_else(|e| panic!("read {t}/{id}: {e}"));
        let body = serde_json::from_str(r.body.as_deref().expect("body")).expect("json");
        (r.version.0, body)
    }

    fn slot_status(&self, id: &str) -> String {
        self.current("Slot", id).1["status"]
            .as_str()
            .expect("status")
            .to_owned()
    }

    /// Every Appointment naming Slot `slot`, as (id, status), searched as the server.
    fn appointments_of(&self, slot: &str) -> Vec<(String, String)> {
        let q = query::parse(
            &["Appointment".to_owned()],
            &[("slot".to_owned(), format!("Slot/{slot}"))],
            false,
            None,
        )
        .expect("query");
        let page = self
            .records
            .search(&Caller::server(), &q, 1000)
            .expect("search");
        page.matches
            .iter()
            .map(|r| {
                let v: Value =
                    serde_json::from_str(r.body.as_deref().expect("body")).expect("json");
                (
                    r.id.as_str().to_owned(),
                    v["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn bookable(&self, who: &Caller, days: i64, limit: usize) -> Vec<String> {
        let now = now_micros();
        self.records
            .bookable_slots(who, now - DAY, now + days * DAY, limit)
            .expect("bookable slots")
            .into_iter()
            .map(|s| s.slot)
            .collect()
    }

    /// The fixture's Slots the rules offer (`offered` says which), soonest first.
    fn expected(&self, offered: impl Fn(&SlotRow) -> bool) -> Vec<String> {
        let mut rows: Vec<&SlotRow> = SLOTS.iter().filter(|s| offered(s)).collect();
        rows.sort_by_key(|s| (s.hours, s.id));
        rows.iter().map(|s| s.id.to_owned()).collect()
    }
}

fn body(r: &oxehr_records::StoredResource) -> Value {
    serde_json::from_str(r.body.as_deref().expect("body")).expect("json")
}

fn category(e: &RecordsError) -> Category {
    e.category()
}

fn is_taken(e: &RecordsError) -> bool {
    e.category() == Category::Conflict && e.to_string().contains("that time was just taken")
}

fn sixteen_patients_racing_for_four_slots_make_four_bookings(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let race: Vec<String> = (0..4).map(|i| format!("race-{i}")).collect();
    for (i, id) in race.iter().enumerate() {
        f.slot(id, "sched-a", f.at(10 + i as i64), "free");
    }
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(PATIENTS_OF_A));
    let threads: Vec<_> = (1..=PATIENTS_OF_A)
        .map(|n| {
            let (f, barrier, slot) = (f.clone(), barrier.clone(), race[n % 4].clone());
            std::thread::spawn(move || {
                let who = patient(&p(n));
                barrier.wait();
                let r = f.records.book(&who, &rid(&p(n)), &rid(&slot), "Check-up");
                (p(n), slot, r)
            })
        })
        .collect();
    let mut won: BTreeMap<String, String> = BTreeMap::new();
    let mut refused = 0;
    for t in threads {
        let (who, slot, r) = t.join().expect("thread");
        match r {
            Ok(b) => {
                assert_eq!(body(&b.appointment)["status"], "booked");
                assert!(won.insert(slot, who).is_none(), "a slot booked twice");
            }
            Err(e) if is_taken(&e) => refused += 1,
            Err(e) => panic!("an error of another kind: {e}"),
        }
    }
    assert_eq!(won.len(), 4, "each slot booked once: {won:?}");
    assert_eq!(refused, PATIENTS_OF_A - 4);
    for slot in &race {
        let holders = f.appointments_of(slot);
        assert_eq!(holders.len(), 1, "{slot}: {holders:?}");
        assert_eq!(holders[0].1, "booked");
        let (version, s) = f.current("Slot", slot);
        assert_eq!((version, s["status"].as_str()), (2, Some("busy")), "{slot}");
        let (_, a) = f.current("Appointment", &holders[0].0);
        assert_eq!(
            a["participant"][0]["actor"]["reference"],
            format!("Patient/{}", won[slot])
        );
    }
}

fn bookable_slots_are_the_care_teams_free_future_slots_in_the_window(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let for_a = f.expected(|s| s.for_a);
    assert_eq!(f.bookable(&patient("p1"), 120, 100), for_a);
    assert_eq!(
        f.bookable(&staff("clin-a", Role::Clinician, "org-a"), 120, 100),
        for_a
    );
    assert_eq!(
        f.bookable(&staff("desk-a", Role::FrontDesk, "org-a"), 120, 100),
        for_a
    );
    let for_b = f.expected(|s| s.for_b);
    assert_eq!(f.bookable(&patient("p-b"), 120, 100), for_b);
    assert_eq!(
        f.bookable(&staff("clin-b", Role::Clinician, "org-b"), 120, 100),
        for_b
    );
    // A patient in the care of both sees both teams' times.
    let for_both = f.expected(|s| s.for_a || s.for_b);
    assert_eq!(f.bookable(&patient("p-ab"), 120, 100), for_both);
    // The limit and the window.
    assert_eq!(f.bookable(&patient("p1"), 120, 2), for_a[..2].to_vec());
    let in_a_week = f.expected(|s| s.for_a && s.hours < 6 * 24);
    assert_eq!(f.bookable(&patient("p1"), 7, 100), in_a_week);
    // What a page shows.
    let now = now_micros();
    let shown = f
        .records
        .bookable_slots(&patient("p1"), now, now + 7 * DAY, 100)
        .expect("slots");
    let a1 = shown.iter().find(|s| s.slot == "s-a1").expect("s-a1");
    assert_eq!((a1.start, a1.end), (f.at(2), f.at(2) + HOUR / 2));
    assert_eq!(a1.schedule.id, "sched-a");
    assert_eq!(a1.schedule.practitioner.as_deref(), Some("Dr Ada Lovelace"));
    assert_eq!(a1.schedule.location.as_deref(), Some("Room 4"));
    assert_eq!(
        a1.schedule.organization.as_deref(),
        Some("Riverside Clinic")
    );
    assert!(!a1.schedule.requires_confirmation);
    let hs = shown.iter().find(|s| s.slot == "s-hs").expect("s-hs");
    assert_eq!(hs.schedule.service.as_deref(), Some("Flu clinic"));
    assert_eq!(
        hs.schedule.organization.as_deref(),
        Some("Riverside Clinic")
    );
    assert!(hs.schedule.requires_confirmation);
    let loc = shown.iter().find(|s| s.slot == "s-loc").expect("s-loc");
    assert_eq!(loc.schedule.location.as_deref(), Some("Day unit"));
    // An organization's administrator books nothing.
    let admin = staff("admin-a", Role::OrgAdmin, "org-a");
    let e = f
        .records
        .bookable_slots(&admin, now, now + DAY, 10)
        .expect_err("org admin");
    assert_eq!(category(&e), Category::Forbidden);
}

fn booking_then_cancelling_frees_the_slot_again(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let p1 = patient("p1");
    let b = f
        .records
        .book(&p1, &rid("p1"), &rid("s-a1"), "Sore knee")
        .expect("book");
    assert!(!b.needs_confirmation);
    let a = body(&b.appointment);
    let (_, slot) = f.current("Slot", "s-a1");
    assert_eq!(a["status"], "booked");
    assert_eq!(a["start"], slot["start"]);
    assert_eq!(a["end"], slot["end"]);
    assert_eq!(a["slot"], json!([{"reference": "Slot/s-a1"}]));
    assert_eq!(a["reasonCode"], json!([{"text": "Sore knee"}]));
    assert_eq!(a["description"], "Sore knee");
    assert!(a["created"].is_string());
    assert_eq!(
        a["participant"],
        json!([
            {"actor": {"reference": "Patient/p1"}, "required": "required", "status": "accepted"},
            {"actor": {"reference": "PractitionerRole/role-a"}, "required": "required", "status": "accepted"}
        ])
    );
    assert_eq!(slot["status"], "busy");
    assert!(!f.bookable(&p1, 120, 100).contains(&"s-a1".to_owned()));
    let e = f
        .records
        .book(&patient("p2"), &rid("p2"), &rid("s-a1"), "")
        .expect_err("taken");
    assert!(is_taken(&e), "{e}");

    let id = b.appointment.id.clone();
    let cancelled = f
        .records
        .cancel(&p1, &id, "Feeling better")
        .expect("cancel");
    let c = body(&cancelled);
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["cancelationReason"], json!({"text": "Feeling better"}));
    assert_eq!(f.slot_status("s-a1"), "free");
    assert!(f.bookable(&p1, 120, 100).contains(&"s-a1".to_owned()));
    let e = f.records.cancel(&p1, &id, "").expect_err("twice");
    assert_eq!(category(&e), Category::Conflict, "{e}");
    let again = f
        .records
        .book(&patient("p2"), &rid("p2"), &rid("s-a1"), "")
        .expect("bookable again");
    assert_eq!(body(&again.appointment)["status"], "booked");
    assert_eq!(f.slot_status("s-a1"), "busy");
    // The old Appointment stays cancelled beside the new one.
    let mut holders = f.appointments_of("s-a1");
    holders.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        holders.iter().map(|h| h.1.as_str()).collect::<Vec<_>>(),
        ["booked", "cancelled"]
    );
}

fn rescheduling_moves_to_the_new_slot_or_changes_nothing(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let p1 = patient("p1");
    let first = f
        .records
        .book(&p1, &rid("p1"), &rid("s-a1"), "Follow-up")
        .expect("book");
    let moved = f
        .records
        .reschedule(&p1, &first.appointment.id, &rid("s-a2"))
        .expect("reschedule");
    let (_, old) = f.current("Appointment", first.appointment.id.as_str());
    assert_eq!(old["status"], "cancelled");
    assert_eq!(f.slot_status("s-a1"), "free");
    assert_eq!(f.slot_status("s-a2"), "busy");
    let new = body(&moved.appointment);
    assert_eq!(new["status"], "booked");
    assert_eq!(new["slot"], json!([{"reference": "Slot/s-a2"}]));
    assert_eq!(new["reasonCode"], json!([{"text": "Follow-up"}]));
    assert_eq!(new["start"], f.current("Slot", "s-a2").1["start"]);

    // Someone takes s-a1; moving there now changes nothing.
    f.records
        .book(&patient("p2"), &rid("p2"), &rid("s-a1"), "")
        .expect("p2 books the freed slot");
    let before = [
        f.current("Appointment", moved.appointment.id.as_str()).0,
        f.current("Slot", "s-a1").0,
        f.current("Slot", "s-a2").0,
    ];
    let e = f
        .records
        .reschedule(&p1, &moved.appointment.id, &rid("s-a1"))
        .expect_err("taken");
    assert!(is_taken(&e), "{e}");
    let after = [
        f.current("Appointment", moved.appointment.id.as_str()).0,
        f.current("Slot", "s-a1").0,
        f.current("Slot", "s-a2").0,
    ];
    assert_eq!(before, after, "a refused move changes nothing");
    assert_eq!(f.slot_status("s-a2"), "busy");
    assert_eq!(f.appointments_of("s-a2").len(), 1);
}

fn proposed_bookings_are_confirmed_or_declined_by_the_schedules_staff(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let pab = patient("p-ab");
    let b = f
        .records
        .book(&pab, &rid("p-ab"), &rid("s-hs"), "Flu shot")
        .expect("book");
    assert!(b.needs_confirmation);
    let a = body(&b.appointment);
    assert_eq!(a["status"], "proposed");
    assert_eq!(
        a["participant"][1]["actor"]["reference"],
        "HealthcareService/hs-a"
    );
    assert_eq!(a["participant"][1]["status"], "needs-action");
    assert_eq!(f.slot_status("s-hs"), "busy-tentative");
    // Not offered to anyone else while proposed.
    assert!(!f
        .bookable(&patient("p2"), 120, 100)
        .contains(&"s-hs".to_owned()));

    let id = b.appointment.id.clone();
    let e = f.records.confirm(&pab, &id).expect_err("a patient");
    assert_eq!(category(&e), Category::Forbidden);
    // Organization B sees p-ab's record, but the Schedule is organization A's.
    let clin_b = staff("clin-b", Role::Clinician, "org-b");
    let e = f
        .records
        .confirm(&clin_b, &id)
        .expect_err("another organization");
    assert_eq!(category(&e), Category::Forbidden);
    assert_eq!(
        f.current("Appointment", id.as_str()).1["status"],
        "proposed"
    );

    let clin_a = staff("clin-a", Role::Clinician, "org-a");
    let confirmed = body(&f.records.confirm(&clin_a, &id).expect("confirm"));
    assert_eq!(confirmed["status"], "booked");
    assert_eq!(confirmed["participant"][1]["status"], "accepted");
    assert_eq!(f.slot_status("s-hs"), "busy");
    let e = f.records.confirm(&clin_a, &id).expect_err("not waiting");
    assert_eq!(category(&e), Category::Conflict);

    // Declined: cancelled, the time free again.
    let b2 = f
        .records
        .book(&patient("p2"), &rid("p2"), &rid("s-hs2"), "")
        .expect("book");
    let desk_a = staff("desk-a", Role::FrontDesk, "org-a");
    let declined = body(
        &f.records
            .decline(&desk_a, &b2.appointment.id, "Clinic closed that day")
            .expect("decline"),
    );
    assert_eq!(declined["status"], "cancelled");
    assert_eq!(
        declined["cancelationReason"],
        json!({"text": "Clinic closed that day"})
    );
    assert_eq!(declined["participant"][1]["status"], "declined");
    assert_eq!(f.slot_status("s-hs2"), "free");

    // Staff of the Schedule's organization book without a proposal.
    let direct = f
        .records
        .book(&desk_a, &rid("p3"), &rid("s-hs2"), "")
        .expect("staff book");
    assert!(!direct.needs_confirmation);
    assert_eq!(body(&direct.appointment)["status"], "booked");
    assert_eq!(f.slot_status("s-hs2"), "busy");
}

fn refusals_are_clear_and_change_nothing(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let p1 = patient("p1");
    let cases: Vec<(&str, Caller, &str, &str, Category)> = vec![
        (
            "a patient for another patient",
            p1.clone(),
            "p2",
            "s-a1",
            Category::Forbidden,
        ),
        (
            "a patient outside their care team",
            p1.clone(),
            "p1",
            "s-b",
            Category::Forbidden,
        ),
        (
            "a patient of B on A's schedule",
            patient("p-b"),
            "p-b",
            "s-a1",
            Category::Forbidden,
        ),
        (
            "staff on another organization's schedule",
            staff("clin-b", Role::Clinician, "org-b"),
            "p-b",
            "s-a1",
            Category::Forbidden,
        ),
        (
            "staff for a patient they may not see",
            staff("clin-a", Role::Clinician, "org-a"),
            "p-b",
            "s-a1",
            Category::Forbidden,
        ),
        (
            "an organization's administrator",
            staff("admin-a", Role::OrgAdmin, "org-a"),
            "p1",
            "s-a1",
            Category::Forbidden,
        ),
        (
            "a schedule of no organization",
            p1.clone(),
            "p1",
            "s-doc",
            Category::Forbidden,
        ),
        (
            "a time in the past",
            p1.clone(),
            "p1",
            "s-past",
            Category::Conflict,
        ),
        (
            "a busy time",
            p1.clone(),
            "p1",
            "s-busy",
            Category::Conflict,
        ),
        (
            "an inactive schedule",
            p1.clone(),
            "p1",
            "s-off",
            Category::Conflict,
        ),
        (
            "an unknown slot",
            p1.clone(),
            "p1",
            "s-none",
            Category::NotFound,
        ),
        (
            "an unknown patient",
            staff("clin-a", Role::Clinician, "org-a"),
            "p-none",
            "s-a1",
            Category::NotFound,
        ),
    ];
    for (what, who, patient_id, slot, want) in cases {
        let before = f.current("Slot", if slot == "s-none" { "s-a1" } else { slot });
        let e = f
            .records
            .book(&who, &rid(patient_id), &rid(slot), "")
            .expect_err(what);
        assert_eq!(category(&e), want, "{what}: {e}");
        let after = f.current("Slot", if slot == "s-none" { "s-a1" } else { slot });
        assert_eq!(before, after, "{what}: the slot is unchanged");
    }
    let long = "x".repeat(oxehr_records::MAX_REASON_CHARS + 1);
    let e = f
        .records
        .book(&p1, &rid("p1"), &rid("s-a1"), &long)
        .expect_err("a reason too long");
    assert_eq!(category(&e), Category::Invalid, "{e}");
    // No Appointment was made by any of them.
    for s in SLOTS {
        assert!(f.appointments_of(s.id).is_empty(), "{}", s.id);
    }

    // A patient may not write a Slot through the FHIR interactions.
    let (version, mut slot) = f.current("Slot", "s-a1");
    slot["status"] = json!("busy");
    let e = f
        .records
        .update(&p1, &rtype("Slot"), &rid("s-a1"), slot, None)
        .expect_err("a patient updating a Slot");
    assert_eq!(category(&e), Category::Forbidden);
    assert_eq!(f.current("Slot", "s-a1").0, version);

    // Nor cancel, move or confirm someone else's appointment.
    let b = f
        .records
        .book(&p1, &rid("p1"), &rid("s-a1"), "")
        .expect("book");
    let p2 = patient("p2");
    let id = &b.appointment.id;
    for (what, e) in [
        ("cancel", f.records.cancel(&p2, id, "").expect_err("cancel")),
        (
            "reschedule",
            f.records
                .reschedule(&p2, id, &rid("s-a2"))
                .map(|_| ())
                .expect_err("move"),
        ),
        (
            "decline",
            f.records.decline(&p2, id, "").expect_err("decline"),
        ),
    ] {
        assert_eq!(category(&e), Category::Forbidden, "{what}: {e}");
    }
    assert_eq!(f.current("Appointment", id.as_str()).1["status"], "booked");
    assert_eq!(f.slot_status("s-a1"), "busy");
    assert_eq!(f.slot_status("s-a2"), "free");
}

fn the_audit_trail_names_the_patient_for_the_appointment_and_the_slot(backend: Backend) {
    let Some(f) = open(backend) else { return };
    let b = f
        .records
        .book(&patient("p1"), &rid("p1"), &rid("s-a1"), "")
        .expect("book");
    f.records.flush_audit().expect("flush");
    let filter = oxehr_store::audit::AuditFilter {
        user: Some("user-p1".into()),
        ..Default::default()
    };
    let records = f
        .records
        .audit_events(&Caller::server(), filter, 100)
        .expect("audit");
    let writes: BTreeSet<(String, String, Option<String>, Option<String>)> = records
        .into_iter()
        .map(|r| r.record)
        .filter(|r| r.outcome == "success" && r.action != "search" && r.action != "read")
        .map(|r| {
            (
                r.action,
                r.resource.unwrap_or_default(),
                r.patient,
                r.detail,
            )
        })
        .collect();
    let appointment = format!("Appointment/{}", b.appointment.id);
    let expected: BTreeSet<_> = [
        (
            "create".to_owned(),
            appointment.clone(),
            Some("p1".to_owned()),
            None,
        ),
        (
            "update".to_owned(),
            "Slot/s-a1".to_owned(),
            None,
            Some(format!("book {appointment}")),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(writes, expected);
}

/// A proxy (a parent) books, sees the free time of and cancels for the patient it acts
/// for, as that patient would; for anyone else it is refused, and it cannot confirm.
fn a_proxy_books_for_the_patient_it_acts_for_only(backend: Backend) {
    let Some(f) = open(backend) else { return };
    f.put(
        json!({"resourceType": "RelatedPerson", "id": "parent-of-p1", "active": true,
        "patient": {"reference": "Patient/p1"},
        "identifier": [{"system": oxehr_records::PROXY_ACCOUNT_SYSTEM, "value": "parent-1"}]}),
    );
    let parent = Caller::new(
        "parent-1".to_owned(),
        Role::Proxy,
        None,
        None,
        None,
        &parse_scopes("patient/*.cruds").expect("scopes"),
    );
    let now = now_micros();
    let for_p1: Vec<String> = f
        .records
        .bookable_slots_for(&parent, Some("p1"), now, now + 120 * DAY, 100)
        .expect("slots")
        .into_iter()
        .map(|s| s.slot)
        .collect();
    assert_eq!(
        for_p1,
        f.bookable(&patient("p1"), 120, 100),
        "p1's own care team's time"
    );
    let e = f
        .records
        .bookable_slots_for(&parent, Some("p2"), now, now + 120 * DAY, 100)
        .expect_err("not p2");
    assert_eq!(category(&e), Category::Forbidden, "{e}");
    let e = f
        .records
        .book(&parent, &rid("p2"), &rid("s-a2"), "")
        .expect_err("not p2");
    assert_eq!(category(&e), Category::Forbidden, "{e}");
    assert_eq!(f.slot_status("s-a2"), "free");
    let b = f
        .records
        .book(&parent, &rid("p1"), &rid("s-a1"), "Check-up")
        .expect("book for p1");
    let a = body(&b.appointment);
    assert_eq!(a["participant"][0]["actor"]["reference"], "Patient/p1");
    assert_eq!(f.slot_status("s-a1"), "busy");
    let e = f
        .records
        .confirm(&parent, &b.appointment.id)
        .expect_err("a proxy does not confirm");
    assert_eq!(category(&e), Category::Forbidden, "{e}");
    f.records
        .cancel(&parent, &b.appointment.id, "")
        .expect("cancel for p1");
    assert_eq!(f.slot_status("s-a1"), "free");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(super::Backend::Postgres) })*
        }
    };
}

on_both_backends!(
    sixteen_patients_racing_for_four_slots_make_four_bookings,
    bookable_slots_are_the_care_teams_free_future_slots_in_the_window,
    booking_then_cancelling_frees_the_slot_again,
    rescheduling_moves_to_the_new_slot_or_changes_nothing,
    proposed_bookings_are_confirmed_or_declined_by_the_schedules_staff,
    refusals_are_clear_and_change_nothing,
    the_audit_trail_names_the_patient_for_the_appointment_and_the_slot,
    a_proxy_books_for_the_patient_it_acts_for_only,
);
