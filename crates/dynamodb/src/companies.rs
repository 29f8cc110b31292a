//! Companies' users in DynamoDB: one item per (company, person) under the company
//! (`USER#{member}`), mirrored under the person (`COMPANY#{company}`), written together.
//! A person's default company lives on their account (`default_company`), changed with a
//! version bump so that a booking that read the account before cannot write it back.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::company::{CompanyUser, Role};

impl Store {
    /// The person's role in the company (None: not one of its users).
    pub async fn company_role(
        &self,
        programme_id: &str,
        company_id: &str,
        member_id: &str,
    ) -> Result<Option<Role>, StoreError> {
        let user: Option<CompanyUser> = self
            .get(keys::company_user(programme_id, company_id, member_id))
            .await?;
        Ok(user.map(|u| u.role))
    }

    /// A company's users (one Query of its partition).
    pub async fn company_users(
        &self,
        programme_id: &str,
        company_id: &str,
    ) -> Result<Vec<CompanyUser>, StoreError> {
        self.query_prefix(&keys::member_pk(programme_id, company_id), "USER#")
            .await
    }

    /// The companies a person belongs to.
    pub async fn member_companies(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Vec<CompanyUser>, StoreError> {
        self.query_prefix(&keys::member_pk(programme_id, member_id), "COMPANY#")
            .await
    }

    fn default_company_update(
        &self,
        user: &CompanyUser,
        set: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = key_map(&keys::account(&user.programme_id, &user.member_id));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_values(":c", AttributeValue::S(user.company_id.clone()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let update = if set {
            // The first company becomes the default; a later one only when asked.
            update
                .update_expression("SET default_company = :c, version = version + :one")
                .condition_expression("attribute_exists(PK)")
        } else {
            update
                .update_expression("REMOVE default_company SET version = version + :one")
                .condition_expression("default_company = :c")
        };
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    /// Add a person to a company or change their role. `make_default`: whether their orders
    /// earn for it when they name no company (None: if it is their first company).
    pub async fn put_company_user(
        &self,
        user: &CompanyUser,
        make_default: Option<bool>,
    ) -> Result<(), StoreError> {
        let item = |k| to_item(k, "company_user", user);
        let mut items = vec![
            self.put_item(
                item(keys::company_user(
                    &user.programme_id,
                    &user.company_id,
                    &user.member_id,
                ))?,
                None,
            )?,
            self.put_item(
                item(keys::member_company(
                    &user.programme_id,
                    &user.member_id,
                    &user.company_id,
                ))?,
                None,
            )?,
        ];
        let first = self
            .member_companies(&user.programme_id, &user.member_id)
            .await?
            .iter()
            .all(|c| c.company_id == user.company_id);
        if make_default.unwrap_or(first) {
            items.push(self.default_company_update(user, true)?);
        }
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::Cancelled(r) => Err(StoreError::Build(format!(
                "company user not written (the person's account is gone?): {r:?}"
            ))),
        }
    }

    /// Remove a person from a company (and as their default company). True when they were
    /// one of its users.
    pub async fn remove_company_user(&self, user: &CompanyUser) -> Result<bool, StoreError> {
        let del = |k: (String, String)| -> Result<TransactWriteItem, StoreError> {
            let d = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&k)))
                .condition_expression("attribute_exists(PK)")
                .build()?;
            Ok(TransactWriteItem::builder().delete(d).build())
        };
        let items = vec![
            del(keys::company_user(
                &user.programme_id,
                &user.company_id,
                &user.member_id,
            ))?,
            del(keys::member_company(
                &user.programme_id,
                &user.member_id,
                &user.company_id,
            ))?,
        ];
        if self.transact_retrying(items).await? != TxOutcome::Committed {
            return Ok(false);
        }
        // No longer their default: a separate, conditional write (it may not be).
        let _ = self
            .transact_retrying(vec![self.default_company_update(user, false)?])
            .await?;
        Ok(true)
    }
}
