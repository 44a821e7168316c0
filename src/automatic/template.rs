//! The CloudFormation template of a connection: its managed policies, the
//! role with the trust policy, and the custom resource that reports back.

use crate::domain::{trust_policy, Connection, Partition, Permissions};
use crate::policy::{render_shared, Selection};
use serde_json::{json, Map, Value};

pub const CUSTOM_RESOURCE_ID: &str = "SpotConnection";
pub const ROLE_NAME_PARAMETER: &str = "RoleName";

/// `spotinst-iam-stack-<part of the id>`: unique per connection, well under
/// CloudFormation's 128 characters.
pub fn stack_name(prefix: &str, conn: &Connection) -> String {
    format!("{prefix}-{}", &conn.id.as_str()[4..16])
}

pub(crate) fn default_role_name(conn: &Connection) -> String {
    format!("Spot-Role-{}", &conn.id.as_str()[4..16])
}

/// `arn:<partition>:…` becomes `arn:${AWS::Partition}:…` (cfn-lint I3042).
pub(crate) fn partition_agnostic(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("arn:") => {
            let rest = s.splitn(3, ':').nth(2).unwrap_or_default();
            json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:{rest}")})
        }
        Value::Array(a) => Value::Array(a.iter().map(partition_agnostic).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), partition_agnostic(v))).collect()),
        other => other.clone(),
    }
}

/// The managed policies of a selection as `SpotPolicy…` resources attached
/// to `Role`; their logical IDs. `owner` ends each description.
pub fn policy_resources(
    partition: Partition,
    permissions: &Permissions,
    owner: &str,
    resources: &mut Map<String, Value>,
) -> Vec<String> {
    let selection = Selection::resolve(partition, permissions).expect("stored selections resolve");
    let rendered = render_shared(&selection).expect("stored selections render");
    let mut ids = Vec::new();
    for (i, p) in rendered.policies.iter().enumerate() {
        let id = if rendered.policies.len() == 1 {
            "SpotPolicy".to_owned()
        } else {
            format!("SpotPolicy{}", i + 1)
        };
        let document = serde_json::to_value(&p.document).expect("documents serialize");
        resources.insert(
            id.clone(),
            json!({
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": format!("Spot permissions ({}) for {owner}", p.name),
                    "PolicyDocument": partition_agnostic(&document),
                    "Roles": [{"Ref": "Role"}]
                }
            }),
        );
        ids.push(id);
    }
    ids
}

/// The role every template creates: named by the stack's RoleName
/// parameter, trusting Spot as `trust` says.
pub fn role_resource(description: String, trust: Value) -> Value {
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": ROLE_NAME_PARAMETER},
            "Description": description,
            "AssumeRolePolicyDocument": trust
        }
    })
}

/// The template. Without a topic or a token it has no custom resource: the
/// stack then only creates the role, and the customer pastes its ARN.
pub fn render(conn: &Connection, principal: &str, topic: Option<&str>, token: Option<&str>) -> Value {
    let mut resources = Map::new();
    let policy_ids = policy_resources(
        conn.partition,
        &conn.permissions,
        &format!("connection {}", conn.id.as_str()),
        &mut resources,
    );
    let trust = trust_policy(principal, &conn.external_id, conn.pending_external_id.as_ref());
    resources.insert(
        "Role".into(),
        role_resource(
            format!("Lets Spot manage this account (connection {})", conn.id.as_str()),
            partition_agnostic(&trust),
        ),
    );
    if let (Some(topic), Some(token)) = (topic, token) {
        resources.insert(
            CUSTOM_RESOURCE_ID.into(),
            json!({
                "Type": "Custom::SpotConnection",
                "DependsOn": policy_ids,
                "Properties": {
                    "ServiceToken": partition_agnostic(&json!(topic)),
                    "ConnectionId": conn.id.as_str(),
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "CallbackToken": token
                }
            }),
        );
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("Connects this AWS account to Spot through an IAM role (connection {}).", conn.id.as_str()),
        "Parameters": {
            ROLE_NAME_PARAMETER: {
                "Type": "String",
                "Default": default_role_name(conn),
                "AllowedPattern": "[\\w+=,.@-]{1,64}",
                "Description": "Name of the IAM role Spot will assume"
            }
        },
        "Resources": resources,
        "Outputs": {
            "RoleArn": {"Description": "The role Spot assumes", "Value": {"Fn::GetAtt": ["Role", "Arn"]}}
        }
    })
}
