//! The local stack, for `bonus dev` and the tests alike: the embedded DynamoDB ([`dynamo`])
//! and a moto server for SQS, SES and SNS ([`moto`]).

pub mod dynamo;
pub mod moto;
