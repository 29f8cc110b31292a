//! Who may see and do what to a member: the one access policy (docs/security.md is its
//! prose; the table test below is the same table). Every member route asks [`decide`].
//!
//! Two questions, asked in this order:
//! 1. Does the caller's key carry the action's scope? A missing scope is a 403 that says so;
//!    it never depends on the member, so it tells nothing about them.
//! 2. How is the caller related to the member, and what does that relation allow? Anything
//!    not allowed is answered exactly as a member that does not exist (404), so no answer
//!    tells "exists, but not yours" apart from "does not exist".

use crate::company::Role;
use crate::member::Scope;
use crate::programme::ProgrammeKind;

/// May `partner_id` see and return a gift-shop claim? The partner where it was claimed
/// (its redemption is the one taken back) and the partner whose reward it is (it ships the
/// reward and takes it back). Anyone else is answered as for a voucher code that does not
/// exist. Ops (the CLI) may handle every claim.
pub fn may_handle_claim(partner_id: &str, claimed_at: &str, reward_owner: Option<&str>) -> bool {
    partner_id == claimed_at || reward_owner == Some(partner_id)
}

/// What is done to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Available, pending, held, expiring, tier.
    ReadBalance,
    /// The statement (ledger entries).
    ReadStatement,
    /// Place a hold or claim a reward (spend); capture and void go with the hold's owner.
    Hold,
    /// E-mail, phone, name, consents, preferences, customer ids.
    ReadProfile,
    /// Change the profile, consents or preferences.
    UpdateProfile,
    /// Erase the personal data (GDPR).
    Erase,
    /// Send the member's points to another member (P2P transfer).
    Transfer,
    /// Credit the member points by an adjustment (the adjusting partner issues them).
    Credit,
    /// Debit the member's points by an adjustment.
    Debit,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::ReadBalance,
        Action::ReadStatement,
        Action::Hold,
        Action::ReadProfile,
        Action::UpdateProfile,
        Action::Erase,
        Action::Transfer,
        Action::Credit,
        Action::Debit,
    ];

    /// The scope a partner's key needs for this action.
    pub fn scope(self) -> Scope {
        match self {
            Action::ReadBalance | Action::ReadStatement => Scope::ReadBalance,
            Action::Hold => Scope::Hold,
            Action::ReadProfile => Scope::ReadProfile,
            Action::UpdateProfile => Scope::Enrol,
            Action::Erase => Scope::Erase,
            Action::Transfer => Scope::Transfer,
            Action::Credit | Action::Debit => Scope::Manage,
        }
    }
}

/// How the caller stands to the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Relation {
    /// Operators, through the CLI (`bonus apply`, `audit`, ...). Members created by ops
    /// belong to ops.
    Ops,
    /// The member themself (the member site, a later issue).
    Member,
    /// The partner that enrolled the member.
    Enroller,
    /// Another partner of the member's programme, where the programme shares members: any
    /// member of a coalition, and in a closed programme a member that ops enrolled for the
    /// programme as a whole.
    ProgrammePartner,
    /// A person logged in on the member site, on a company's pages where they have a role
    /// (crate::company).
    CompanyUser(crate::company::Role),
    /// Anyone else: another programme, or in a closed programme a member another partner
    /// enrolled.
    Outsider,
}

/// How `partner_id` (of `partner_programme`) stands to a member of `member_programme` whose
/// enrolling partners are `enrolled_with` (empty: enrolled by ops, for the whole programme).
/// Ordering at a partner never changes this: only enrolment does.
pub fn relation(
    partner_id: &str,
    partner_programme: &str,
    kind: ProgrammeKind,
    member_programme: &str,
    enrolled_with: &[String],
) -> Relation {
    if partner_programme != member_programme {
        Relation::Outsider
    } else if enrolled_with.iter().any(|p| p == partner_id) {
        Relation::Enroller
    } else if kind == ProgrammeKind::Coalition || enrolled_with.is_empty() {
        Relation::ProgrammePartner
    } else {
        Relation::Outsider
    }
}

/// What a relation allows for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// All of it.
    Full,
    /// Only the statement entries the caller caused (its own orders, refunds and holds).
    OwnEntries,
    /// Nothing: answered as a member that does not exist.
    None,
}

/// The table: what each relation may do.
pub fn grant(relation: Relation, action: Action) -> Grant {
    use Action::*;
    match (relation, action) {
        // Nobody adjusts their own points.
        (Relation::Member, Credit | Debit) => Grant::None,
        (Relation::Ops | Relation::Enroller | Relation::Member, _) => Grant::Full,
        // Another coalition partner may give a member its own points (it pays for them),
        // never take any away.
        (Relation::ProgrammePartner, Credit) => Grant::Full,
        (Relation::ProgrammePartner, Debit) => Grant::None,
        (Relation::ProgrammePartner, ReadBalance | Hold) => Grant::Full,
        (Relation::ProgrammePartner, ReadStatement) => Grant::OwnEntries,
        // Moving a member's points away is for the member, ops and the partner that
        // enrolled them; another coalition partner may spend at itself, never give away.
        (Relation::ProgrammePartner, ReadProfile | UpdateProfile | Erase | Transfer) => Grant::None,
        // A company's users: everyone with a role sees its balance and statement; only an
        // owner spends, sends and reads its profile. Nobody but ops and its enroller erases.
        (Relation::CompanyUser(_), ReadBalance | ReadStatement) => Grant::Full,
        (Relation::CompanyUser(Role::Owner), Hold | Transfer | ReadProfile) => Grant::Full,
        (Relation::CompanyUser(_), _) => Grant::None,
        (Relation::Outsider, _) => Grant::None,
    }
}

/// The answer to a partner's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    /// 403 `missing_scope`: the key lacks this scope (whatever the member).
    MissingScope(Scope),
    /// 404 `member_not_found`, exactly as for a member that does not exist.
    NotFound,
}

/// The scope check alone: asked before the member is read, so it cannot depend on them.
pub fn check_scope(scopes: &[Scope], action: Action) -> Result<(), Scope> {
    let needed = action.scope();
    if scopes.contains(&needed) {
        Ok(())
    } else {
        Err(needed)
    }
}

/// A partner's key with `scopes` asks to do `action` to a member it stands to as
/// `relation` (None: no such member).
pub fn decide(scopes: &[Scope], relation: Option<Relation>, action: Action) -> Decision {
    if let Err(scope) = check_scope(scopes, action) {
        return Decision::MissingScope(scope);
    }
    match relation.map(|r| grant(r, action)) {
        None | Some(Grant::None) => Decision::NotFound,
        Some(g) => Decision::Allow(g),
    }
}

/// How a logged-in member (the member site's session) stands to a member: themself, a
/// user of that company (`company_role`: the session member's role in the member, if it is
/// a company they belong to), or an outsider. Sessions carry no scopes: the relation alone
/// decides.
pub fn member_relation(
    session_programme: &str,
    session_member: &str,
    programme_id: &str,
    member_id: &str,
    company_role: Option<Role>,
) -> Relation {
    if session_programme != programme_id {
        Relation::Outsider
    } else if session_member == member_id {
        Relation::Member
    } else if let Some(role) = company_role {
        Relation::CompanyUser(role)
    } else {
        Relation::Outsider
    }
}

/// A member-site session asks to do `action` to a member it stands to as `relation` (None:
/// no such member). The same table as partners', without scopes.
pub fn decide_session(relation: Option<Relation>, action: Action) -> Decision {
    match relation.map(|r| grant(r, action)) {
        None | Some(Grant::None) => Decision::NotFound,
        Some(g) => Decision::Allow(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_handled_where_it_was_claimed_or_by_the_rewards_owner() {
        assert!(may_handle_claim("shop", "shop", None));
        assert!(may_handle_claim("vendor", "shop", Some("vendor")));
        assert!(!may_handle_claim("rival", "shop", Some("vendor")));
        assert!(!may_handle_claim("rival", "shop", None));
    }
    use Action::*;
    use Relation::*;

    /// The whole table, as docs/security.md states it: caller relation x action.
    #[test]
    fn the_policy_table() {
        const F: Grant = Grant::Full;
        const O: Grant = Grant::OwnEntries;
        const N: Grant = Grant::None;
        #[rustfmt::skip]
        let table: [(Relation, [Grant; 9]); 8] = [
            //                  balance statement hold profile update erase transfer credit debit
            (Ops,              [F,      F,        F,   F,      F,     F,    F,       F,     F]),
            (Member,           [F,      F,        F,   F,      F,     F,    F,       N,     N]),
            (Enroller,         [F,      F,        F,   F,      F,     F,    F,       F,     F]),
            (ProgrammePartner, [F,      O,        F,   N,      N,     N,    N,       F,     N]),
            (CompanyUser(Role::Owner),  [F, F,    F,   F,      N,     N,    F,       N,     N]),
            (CompanyUser(Role::Buyer),  [F, F,    N,   N,      N,     N,    N,       N,     N]),
            (CompanyUser(Role::Viewer), [F, F,    N,   N,      N,     N,    N,       N,     N]),
            (Outsider,         [N,      N,        N,   N,      N,     N,    N,       N,     N]),
        ];
        for (relation, row) in table {
            for (action, want) in Action::ALL.into_iter().zip(row) {
                assert_eq!(grant(relation, action), want, "{relation:?} {action:?}");
            }
        }
    }

    #[test]
    fn a_session_reaches_its_own_member_only() {
        let me = member_relation("velo", "M-1", "velo", "M-1", None);
        assert_eq!(me, Member);
        for action in Action::ALL {
            // Everything but adjusting their own points.
            let want = if matches!(action, Credit | Debit) {
                Decision::NotFound
            } else {
                Decision::Allow(Grant::Full)
            };
            assert_eq!(decide_session(Some(me), action), want);
            for other in [
                member_relation("velo", "M-1", "velo", "M-2", None),
                member_relation("velo", "M-1", "bonvito", "M-1", None),
                // A role in a company of another programme is no role here.
                member_relation("velo", "M-1", "bonvito", "C-1", Some(Role::Owner)),
            ] {
                assert_eq!(decide_session(Some(other), action), Decision::NotFound);
            }
            assert_eq!(decide_session(None, action), Decision::NotFound);
        }
        // A company's user: by role.
        let viewer = member_relation("velo", "M-1", "velo", "C-1", Some(Role::Viewer));
        assert_eq!(viewer, CompanyUser(Role::Viewer));
        assert_eq!(decide_session(Some(viewer), Hold), Decision::NotFound);
        assert_eq!(
            decide_session(Some(viewer), ReadStatement),
            Decision::Allow(Grant::Full)
        );
    }

    #[test]
    fn relations_follow_enrolment_and_programme_kind_never_orders() {
        let a = vec!["a".to_string()];
        let ops: Vec<String> = vec![];
        use ProgrammeKind::*;
        let cases = [
            ("a", "p", Closed, "p", &a, Enroller),
            ("b", "p", Closed, "p", &a, Outsider),
            ("b", "p", Closed, "p", &ops, ProgrammePartner),
            ("a", "p", Coalition, "p", &a, Enroller),
            ("b", "p", Coalition, "p", &a, ProgrammePartner),
            ("b", "p", Coalition, "p", &ops, ProgrammePartner),
            ("a", "q", Coalition, "p", &a, Outsider),
            ("a", "q", Closed, "p", &ops, Outsider),
        ];
        for (partner, its_programme, kind, member_programme, enrolled, want) in cases {
            assert_eq!(
                relation(partner, its_programme, kind, member_programme, enrolled),
                want,
                "{partner} {its_programme} {kind:?} {member_programme} {enrolled:?}"
            );
        }
    }

    #[test]
    fn scope_is_checked_first_and_everything_refused_is_a_404() {
        let all = [
            Scope::ReadBalance,
            Scope::ReadProfile,
            Scope::Hold,
            Scope::Enrol,
            Scope::Erase,
            Scope::Transfer,
        ];
        let widget = [Scope::ReadBalance];
        // Every relation (and no member at all) x action x key.
        let relations = [
            None,
            Some(Ops),
            Some(Member),
            Some(Enroller),
            Some(ProgrammePartner),
            Some(Outsider),
        ];
        for relation in relations {
            for action in Action::ALL {
                let d = decide(&widget, relation, action);
                if action.scope() != Scope::ReadBalance {
                    assert_eq!(d, Decision::MissingScope(action.scope()));
                    continue;
                }
                let want = match relation.map(|r| grant(r, action)) {
                    None | Some(Grant::None) => Decision::NotFound,
                    Some(g) => Decision::Allow(g),
                };
                assert_eq!(d, want, "{relation:?} {action:?}");
                assert_eq!(decide(&all, relation, action), want);
            }
        }
        // A widget key never reads the profile, even of its own member.
        assert_eq!(
            decide(&widget, Some(Enroller), ReadProfile),
            Decision::MissingScope(Scope::ReadProfile)
        );
        // Another coalition partner: balance yes, profile as if there were no member.
        assert_eq!(
            decide(&all, Some(ProgrammePartner), ReadProfile),
            Decision::NotFound
        );
        assert_eq!(decide(&all, None, ReadProfile), Decision::NotFound);
        assert_eq!(
            decide(&all, Some(ProgrammePartner), Erase),
            Decision::NotFound
        );
    }

    #[test]
    fn legacy_enrol_keys_keep_what_they_could_do() {
        assert_eq!(
            Scope::upgrade_legacy(&[Scope::ReadBalance, Scope::Hold, Scope::Enrol]),
            vec![
                Scope::ReadBalance,
                Scope::ReadProfile,
                Scope::Hold,
                Scope::Enrol,
                Scope::Erase
            ]
        );
        assert_eq!(
            Scope::upgrade_legacy(&[Scope::ReadBalance]),
            vec![Scope::ReadBalance]
        );
    }
}
