//! Where a logged record goes when the log is replayed into the buffers (at start, and after a
//! failed log write).
//!
//! The events table and the quarantine table of a contract commit separately, so each has its
//! own committed LSN, and "committed LSN L" means every record *routed to that table* up to L
//! is in it. That only holds if a record's table cannot change between the commit and a later
//! replay. Re-judging with the running build can change it (a rebuild loosened or tightened a
//! rule), and then a record could fall between the two LSNs: quarantined when acknowledged,
//! above the quarantine table's LSN but at or below the events table's, and accepted by the
//! new build, would land in neither table. So the log keeps the verdict each event was
//! acknowledged with, and replay routes by it:
//!
//! - acknowledged as quarantined or rejected: the quarantine table, with the logged verdict
//!   and violations, whatever the running build says (`contract-runtime replay` moves it to
//!   the events table later if the new build accepts it);
//! - acknowledged as accepted: the events table, if the running build accepts it too. If it
//!   refuses it, the events table cannot take it (its row cannot be built), so the record is
//!   logged again as quarantined, superseding the original, before anything is committed: its
//!   table is fixed in the log, and a crash between the two tables' commits neither loses it
//!   (the events table's LSN passing it) nor duplicates it.
//! - records of the formats before the verdict was logged: judged by the running build, as
//!   before (the loss above remains possible for those, once, across the upgrade).

use contract_support::{Verdict, Violation};

use super::Record;

/// The committed LSNs of a contract's two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub events: u64,
    pub quarantine: u64,
}

/// What replay does with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Nothing: its table holds it already, or a later record replaces it.
    Done,
    /// The events buffer: the running build accepted it, above the events table's LSN.
    Events,
    /// The quarantine buffer, with this verdict and these violations.
    Quarantine(Verdict, Vec<Violation>),
    /// Acknowledged as accepted, not committed, and refused by the running build: log it again
    /// as refused with this verdict and these violations (a new record that supersedes this
    /// one), then buffer that record's quarantine row.
    Relog(Verdict, Vec<Violation>),
}

/// Where `record` goes, given its contract's committed LSNs and whether a later record
/// supersedes it. `judge` is the running build's verdict; it is called at most once, and only
/// for records the log alone cannot place. Whenever it is called and accepts a record above
/// `committed.events`, the answer is `Route::Events` (so a judgement that appends accepted
/// events above that LSN to the events buffer agrees with the route).
pub fn route(
    record: &Record,
    committed: Committed,
    superseded: bool,
    judge: impl FnOnce() -> (Verdict, Vec<Violation>),
) -> Route {
    if superseded {
        return Route::Done;
    }
    let events_pending = record.lsn > committed.events;
    let quarantine_pending = record.lsn > committed.quarantine;
    match &record.acknowledged {
        Some(acknowledged) if acknowledged.verdict != Verdict::Accept => {
            if quarantine_pending {
                Route::Quarantine(acknowledged.verdict, acknowledged.violations.clone())
            } else {
                Route::Done
            }
        }
        Some(_accepted) => {
            if !events_pending {
                return Route::Done;
            }
            match judge() {
                (Verdict::Accept, _) => Route::Events,
                (verdict, violations) => Route::Relog(verdict, violations),
            }
        }
        None => {
            // Written before the log kept verdicts: the running build decides, as it did then.
            if !events_pending && !quarantine_pending {
                return Route::Done;
            }
            match judge() {
                (Verdict::Accept, _) if events_pending => Route::Events,
                (Verdict::Accept, _) => Route::Done,
                (verdict, violations) if quarantine_pending => {
                    Route::Quarantine(verdict, violations)
                }
                _ => Route::Done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Acknowledged;
    use super::*;
    use contract_support::{Code, Policy};

    fn violation(code: Code) -> Violation {
        Violation {
            code,
            path: "$.updated_at".into(),
            policy: Policy::Quarantine,
            message: format!("broke {code}"),
        }
    }

    fn logged(lsn: u64, acknowledged: Option<Verdict>) -> Record {
        Record {
            lsn,
            contract: "game_events".into(),
            received_micros: 1,
            request_id: format!("r{lsn}"),
            player_id: None,
            claims: Vec::new(),
            body: b"{}".to_vec(),
            acknowledged: acknowledged
                .map(|verdict| Acknowledged::new(verdict, &[violation(Code::NotBefore)])),
            supersedes: None,
        }
    }

    fn accepts() -> (Verdict, Vec<Violation>) {
        (Verdict::Accept, Vec::new())
    }

    fn refuses() -> (Verdict, Vec<Violation>) {
        (Verdict::Reject, vec![violation(Code::MaxLength)])
    }

    fn not_judged() -> (Verdict, Vec<Violation>) {
        panic!("the log alone places this record")
    }

    const EVENTS_AHEAD: Committed = Committed {
        events: 10,
        quarantine: 5,
    };
    const QUARANTINE_AHEAD: Committed = Committed {
        events: 5,
        quarantine: 10,
    };

    /// Issue #27 item 9: quarantined at acknowledgement, between the two LSNs, accepted now.
    #[test]
    fn an_event_acknowledged_as_quarantined_stays_quarantined_whatever_the_build_says() {
        let record = logged(7, Some(Verdict::Quarantine));
        assert_eq!(
            route(&record, EVENTS_AHEAD, false, not_judged),
            Route::Quarantine(Verdict::Quarantine, vec![violation(Code::NotBefore)])
        );
        let rejected = logged(7, Some(Verdict::Reject));
        assert!(matches!(
            route(&rejected, EVENTS_AHEAD, false, not_judged),
            Route::Quarantine(Verdict::Reject, _)
        ));
        assert_eq!(
            route(&record, QUARANTINE_AHEAD, false, not_judged),
            Route::Done
        );
    }

    #[test]
    fn an_event_acknowledged_as_accepted_goes_to_the_events_table() {
        let record = logged(7, Some(Verdict::Accept));
        assert_eq!(
            route(&record, QUARANTINE_AHEAD, false, accepts),
            Route::Events
        );
        assert_eq!(route(&record, EVENTS_AHEAD, false, not_judged), Route::Done);
    }

    #[test]
    fn an_accepted_event_the_new_build_refuses_is_logged_again_as_refused() {
        let record = logged(7, Some(Verdict::Accept));
        // Above both LSNs, or only above the events table's (the quarantine table's LSN says
        // nothing about an event that was never routed to it).
        for committed in [
            QUARANTINE_AHEAD,
            Committed {
                events: 0,
                quarantine: 0,
            },
        ] {
            assert_eq!(
                route(&record, committed, false, refuses),
                Route::Relog(Verdict::Reject, vec![violation(Code::MaxLength)])
            );
        }
    }

    #[test]
    fn a_superseded_record_goes_nowhere() {
        for acknowledged in [None, Some(Verdict::Accept), Some(Verdict::Quarantine)] {
            let record = logged(7, acknowledged);
            let nothing_committed = Committed {
                events: 0,
                quarantine: 0,
            };
            assert_eq!(
                route(&record, nothing_committed, true, not_judged),
                Route::Done
            );
        }
    }

    #[test]
    fn records_without_a_verdict_are_judged_as_before() {
        let record = logged(7, None);
        assert_eq!(
            route(&record, QUARANTINE_AHEAD, false, accepts),
            Route::Events
        );
        assert_eq!(route(&record, EVENTS_AHEAD, false, accepts), Route::Done);
        assert_eq!(
            route(&record, EVENTS_AHEAD, false, refuses),
            Route::Quarantine(Verdict::Reject, vec![violation(Code::MaxLength)])
        );
        assert_eq!(
            route(&record, QUARANTINE_AHEAD, false, refuses),
            Route::Done
        );
        let both = Committed {
            events: 7,
            quarantine: 7,
        };
        assert_eq!(route(&record, both, false, not_judged), Route::Done);
    }

    /// The promise `replay` relies on when its judgement appends to the events buffer.
    #[test]
    fn an_acceptance_above_the_events_lsn_always_routes_to_the_events_table() {
        for acknowledged in [None, Some(Verdict::Accept), Some(Verdict::Reject)] {
            for events in 0..4 {
                for quarantine in 0..4 {
                    let record = logged(2, acknowledged);
                    let committed = Committed { events, quarantine };
                    let mut judged = false;
                    let answer = route(&record, committed, false, || {
                        judged = true;
                        accepts()
                    });
                    if judged && record.lsn > events {
                        assert_eq!(answer, Route::Events, "{acknowledged:?} {committed:?}");
                    } else {
                        assert_ne!(answer, Route::Events, "{acknowledged:?} {committed:?}");
                    }
                }
            }
        }
    }

    /// A replay's own routing, after a crash at any point of the commits that follow it, then
    /// a replay by yet another build: every acknowledged event ends in exactly one table.
    #[test]
    fn repeated_crashes_and_builds_neither_lose_nor_duplicate() {
        for acknowledged in [Verdict::Accept, Verdict::Quarantine, Verdict::Reject] {
            // Where the old build's crash left the two tables: the event's own table below it,
            // the other one anywhere (the tables commit separately).
            for own in [0, 5] {
                for other in [0, 5, 10] {
                    let committed = if acknowledged == Verdict::Accept {
                        Committed {
                            events: own,
                            quarantine: other,
                        }
                    } else {
                        Committed {
                            events: other,
                            quarantine: own,
                        }
                    };
                    for builds in [[true, true], [true, false], [false, true], [false, false]] {
                        for crash in Crash::ALL {
                            let tables = simulate(acknowledged, committed, builds, crash);
                            let case = format!(
                                "{acknowledged:?}, {committed:?}, builds accept {builds:?}, \
                                 {crash:?}: {tables:?}"
                            );
                            assert_eq!(tables.events + tables.quarantine, 1, "{case}");
                            if acknowledged != Verdict::Accept {
                                assert_eq!(tables.quarantine, 1, "{case}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Where the crash after the first replay falls among its commits (events, then quarantine,
    /// as `flush` does them; a commit covers everything buffered, up to the newest LSN).
    #[derive(Debug, Clone, Copy)]
    enum Crash {
        BeforeBoth,
        BetweenThem,
        AfterBoth,
    }

    impl Crash {
        const ALL: [Crash; 3] = [Crash::BeforeBoth, Crash::BetweenThem, Crash::AfterBoth];
    }

    /// How many copies of event 7 each table holds.
    #[derive(Debug, Default)]
    struct Tables {
        events: usize,
        quarantine: usize,
    }

    /// The old build logged event 7 as `acknowledged` and event 10 as accepted, and crashed
    /// with its tables at `committed`. A first new build replays and crashes at `crash`; a
    /// second replays and commits both tables. `builds[i]`: whether build i accepts event 7.
    fn simulate(
        acknowledged: Verdict,
        mut committed: Committed,
        builds: [bool; 2],
        crash: Crash,
    ) -> Tables {
        let mut log = vec![
            logged(7, Some(acknowledged)),
            logged(10, Some(Verdict::Accept)),
        ];
        let mut tables = Tables::default();
        for (replay, accepting) in builds.into_iter().enumerate() {
            let superseded: Vec<u64> = log.iter().filter_map(|r| r.supersedes).collect();
            let (mut to_events, mut to_quarantine) = (Vec::new(), Vec::new());
            let mut relogged = Vec::new();
            let mut next_lsn = log.iter().map(|r| r.lsn).max().unwrap_or(0) + 1;
            for record in &log {
                // Event 10 is accepted by every build; event 7 (and its copies) as `builds` say.
                let accepts_it = accepting || record.request_id == "r10";
                let judgement = || if accepts_it { accepts() } else { refuses() };
                match route(
                    record,
                    committed,
                    superseded.contains(&record.lsn),
                    judgement,
                ) {
                    Route::Done => {}
                    Route::Events => to_events.push(record.request_id.clone()),
                    Route::Quarantine(..) => to_quarantine.push(record.request_id.clone()),
                    Route::Relog(verdict, violations) => {
                        relogged.push(record.relogged(next_lsn, verdict, violations));
                        next_lsn += 1;
                        to_quarantine.push(record.request_id.clone());
                    }
                }
            }
            // Relogged records are durable before any commit.
            log.extend(relogged);
            let newest = next_lsn - 1;
            let (events_commit, quarantine_commit) = match (replay, crash) {
                (0, Crash::BeforeBoth) => (false, false),
                (0, Crash::BetweenThem) => (true, false),
                _ => (true, true),
            };
            let sevens = |ids: &[String]| ids.iter().filter(|id| *id == "r7").count();
            // A commit of an empty buffer is skipped and records no LSN (as `commit` does).
            if events_commit && !to_events.is_empty() {
                tables.events += sevens(&to_events);
                committed.events = newest;
            }
            if quarantine_commit && !to_quarantine.is_empty() {
                tables.quarantine += sevens(&to_quarantine);
                committed.quarantine = newest;
            }
        }
        tables
    }
}
