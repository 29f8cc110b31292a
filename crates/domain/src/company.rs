//! Companies: B2B members whose employees buy for them. A company is a member whose account
//! is marked as one ([`CompanyAccount`]); its users are persons (members too), each with a
//! role. Who earns for an order that names a company (or is placed by one of its buyers)
//! follows the programme's `company_rewards` setting.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a person may do for a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, spends, sends points; buys too.
    Owner,
    /// Their orders earn for the company.
    Buyer,
    /// Sees the balance and statement.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "buyer" => Some(Role::Buyer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// May this role's orders earn for the company?
    pub fn buys(self) -> bool {
        matches!(self, Role::Owner | Role::Buyer)
    }
}

/// The mark of a company's account, with the company's own choices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyAccount {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
    /// Under `company_rewards: both`, the company's choice to keep its employees' share
    /// too (a private benefit may be taxed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_employee_share: bool,
}

/// A person's place in a company, as stored (under the company and, mirrored, under the
/// person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyUser {
    pub programme_id: String,
    pub company_id: String,
    pub member_id: String,
    pub role: Role,
}

/// Who earns for company orders (`company_rewards` in the config file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyRewards {
    /// All points go to the company (Awardit: "the points belong to the company").
    #[default]
    Company,
    /// The company gets a share, the employee who bought the rest
    /// (`company_employee_percent`); a company can turn its employees' share off.
    Both,
    /// All points go to the employee who bought.
    Employee,
}

/// The employee's share of a line's points: `percent` of them, rounded down (the company
/// gets the remainder). 80/20 of 99 points: the employee 19 (19.8 rounded down), the
/// company 80.
pub fn employee_share(points: crate::money::Points, percent: u32) -> crate::money::Points {
    if points <= 0 {
        return 0;
    }
    let exact = i128::from(points) * i128::from(percent.min(100)) / 100;
    i64::try_from(exact).unwrap_or(0)
}

impl CompanyRewards {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "company" => Some(CompanyRewards::Company),
            "employee" => Some(CompanyRewards::Employee),
            "both" => Some(CompanyRewards::Both),
            _ => None,
        }
    }
}

/// Who an order earns for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earner {
    /// The buyer, as any member's order.
    Buyer,
    /// The company (the buyer is one of its buyers or owners).
    Company(String),
    /// The order named a company the buyer does not buy for: the buyer alone earns.
    BuyerNotInCompany(String),
}

/// Decide who earns. `company`: the company the order named or the buyer's default, with
/// what was read of it: whether it is a company account, and the buyer's role in it.
pub fn earner(
    rewards: CompanyRewards,
    company: Option<(&str, bool, Option<Role>)>,
    named: bool,
) -> Earner {
    let Some((company_id, is_company, role)) = company else {
        return Earner::Buyer;
    };
    if !is_company || !role.is_some_and(Role::buys) {
        // Only a company the order named is worth telling about; a stale default is not.
        return if named {
            Earner::BuyerNotInCompany(company_id.to_string())
        } else {
            Earner::Buyer
        };
    }
    match rewards {
        CompanyRewards::Company | CompanyRewards::Both => Earner::Company(company_id.to_string()),
        CompanyRewards::Employee => Earner::Buyer,
    }
}

/// A role from a request.
pub fn parse_role(s: &str) -> Result<Role, Error> {
    Role::parse(s).ok_or_else(|| Error::invalid("invalid_role", "role: owner, buyer or viewer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_80_20_split_rounds_each_line_down_once_and_the_company_gets_the_rest() {
        // 99 points: the employee 20% = 19.8 -> 19, the company 80.
        assert_eq!(employee_share(99, 20), 19);
        assert_eq!(99 - employee_share(99, 20), 80);
        assert_eq!(employee_share(100, 20), 20);
        assert_eq!(employee_share(4, 20), 0);
        assert_eq!(employee_share(0, 20), 0);
        assert_eq!(employee_share(-5, 20), 0);
        assert_eq!(employee_share(7, 100), 7);
        assert_eq!(employee_share(7, 250), 7);
    }

    #[test]
    fn who_earns_follows_the_setting_and_the_buyers_role() {
        use CompanyRewards::*;
        let c = |role| Some(("ACME", true, role));
        assert_eq!(
            earner(Company, c(Some(Role::Buyer)), true),
            Earner::Company("ACME".into())
        );
        assert_eq!(
            earner(Company, c(Some(Role::Owner)), false),
            Earner::Company("ACME".into())
        );
        assert_eq!(earner(Employee, c(Some(Role::Buyer)), true), Earner::Buyer);
        // A viewer does not buy for the company; nor does a stranger.
        assert_eq!(
            earner(Company, c(Some(Role::Viewer)), true),
            Earner::BuyerNotInCompany("ACME".into())
        );
        assert_eq!(
            earner(Company, c(None), true),
            Earner::BuyerNotInCompany("ACME".into())
        );
        // Named but not a company at all: the same answer (nothing more is told).
        assert_eq!(
            earner(Company, Some(("M-2", false, None)), true),
            Earner::BuyerNotInCompany("M-2".into())
        );
        // A default company that no longer holds: the buyer earns, quietly.
        assert_eq!(earner(Company, c(None), false), Earner::Buyer);
        assert_eq!(earner(Company, None, false), Earner::Buyer);
    }
}
