//! The organization's two templates. The management stack holds the
//! management account's own role (StackSets never deploy there), read-only
//! Organizations access for reconciliation, the custom resource reporting the
//! role, and a service-managed StackSet whose member template enrolls each
//! account (its own external ID, through `Fn::GetAtt`) and links its role.
//! The management role may list that StackSet's instances: a member's
//! request is accepted only from the stack its instance reports.

use crate::automatic::{default_role_name, partition_agnostic, role_resource, CUSTOM_RESOURCE_ID, ROLE_NAME_PARAMETER};
use crate::domain::Connection;
use crate::domain::Organization;
use serde_json::{json, Map, Value};

pub const ENROLL_ID: &str = "SpotEnroll";
pub const LINK_ID: &str = "SpotLink";
pub const ENROLL_TYPE: &str = "Custom::SpotOrganizationEnroll";
pub const LINK_TYPE: &str = "Custom::SpotOrganizationLink";
pub const STACK_SET_ID: &str = "SpotMemberStackSet";
pub const MEMBER_ROLE_PARAMETER: &str = "MemberRoleName";
pub const TARGETS_PARAMETER: &str = "OrganizationalUnitIds";
/// CloudFormation's limit for an inline `TemplateBody` (aws-rules.md).
pub const MAX_MEMBER_TEMPLATE: usize = 51_200;

/// What reconciliation needs from the management account: read-only (the
/// guardrails: each level's SCPs and RCPs and their documents).
pub const ORGANIZATIONS_READ: [&str; 10] = [
    "organizations:DescribeAccount",
    "organizations:DescribeOrganization",
    "organizations:DescribePolicy",
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListParents",
    "organizations:ListPoliciesForTarget",
    "organizations:ListRoots",
];

/// What binds a member's link to its stack instance (the StackSet's
/// instances), on this organization's StackSet only.
pub const STACK_SET_READ: [&str; 1] = ["cloudformation:ListStackInstances"];

pub fn member_role_name(o: &Organization) -> String {
    format!("Spot-Member-{}", o.id.short())
}

pub fn stack_set_name(o: &Organization) -> String {
    format!("Spot-Organization-{}", o.id.short())
}

/// The managed policies of a selection, attached to `Role`.
fn policies(o: &Organization, resources: &mut Map<String, Value>) -> Vec<String> {
    crate::automatic::policy_resources(
        o.partition,
        &o.permissions,
        &format!("organization {}", o.id.as_str()),
        resources,
    )
}

/// Trust for the vendor principal only, with this account's external ID.
fn trust(principal: &str, external_id: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SpotAssumeRoleWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": partition_agnostic(&json!(principal))},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]
    })
}

/// The template each member account's stack instance runs.
pub fn member(o: &Organization, principal: &str, topic: &str, token: &str) -> Value {
    let mut resources = Map::new();
    let reporter = |extra: Value| {
        let mut p = json!({
            "ServiceToken": partition_agnostic(&json!(topic)),
            "OrganizationId": o.id.as_str(),
            "CallbackToken": token,
        });
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        p
    };
    resources.insert(
        ENROLL_ID.into(),
        json!({"Type": ENROLL_TYPE, "Properties": reporter(json!({}))}),
    );
    let policy_ids = policies(o, &mut resources);
    resources.insert(
        "Role".into(),
        role_resource(
            format!("Lets Spot manage this account (organization {})", o.id.as_str()),
            trust(principal, json!({"Fn::GetAtt": [ENROLL_ID, "ExternalId"]})),
        ),
    );
    resources.insert(
        LINK_ID.into(),
        json!({
            "Type": LINK_TYPE,
            "DependsOn": policy_ids,
            "Properties": reporter(json!({"RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}}))
        }),
    );
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("Connects this member account to Spot (organization {}).", o.id.as_str()),
        "Parameters": {
            ROLE_NAME_PARAMETER: {
                "Type": "String",
                "Default": member_role_name(o),
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

/// The management stack's template; `member` goes inline into the StackSet.
pub fn management(
    o: &Organization,
    mgmt: &Connection,
    principal: &str,
    topic: &str,
    connection_token: &str,
    member: &Value,
) -> Value {
    let mut resources = Map::new();
    let mut depends = policies(o, &mut resources);
    resources.insert(
        "OrganizationsRead".into(),
        json!({
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": format!("Lets Spot see which accounts belong to organization {} (read-only)", o.id.as_str()),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Sid": "SpotOrganizationsRead", "Effect": "Allow", "Action": ORGANIZATIONS_READ, "Resource": "*"},
                        {
                            "Sid": "SpotMemberInstancesRead",
                            "Effect": "Allow",
                            "Action": STACK_SET_READ,
                            // The StackSet's ARN ends with an id CloudFormation picks.
                            "Resource": {"Fn::Sub": format!(
                                "arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stackset/{}:*",
                                stack_set_name(o)
                            )}
                        }
                    ]
                },
                "Roles": [{"Ref": "Role"}]
            }
        }),
    );
    depends.push("OrganizationsRead".into());
    resources.insert(
        "Role".into(),
        role_resource(
            format!(
                "Lets Spot manage the management account of organization {}",
                o.id.as_str()
            ),
            trust(principal, json!(mgmt.external_id.as_str())),
        ),
    );
    resources.insert(
        CUSTOM_RESOURCE_ID.into(),
        json!({
            "Type": "Custom::SpotConnection",
            "DependsOn": depends,
            "Properties": {
                "ServiceToken": partition_agnostic(&json!(topic)),
                "ConnectionId": mgmt.id.as_str(),
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "CallbackToken": connection_token
            }
        }),
    );
    // After the management role is connected: members are confirmed through it.
    resources.insert(
        STACK_SET_ID.into(),
        json!({
            "Type": "AWS::CloudFormation::StackSet",
            "DependsOn": [CUSTOM_RESOURCE_ID],
            "Properties": {
                "StackSetName": stack_set_name(o),
                "Description": format!("Connects every member account to Spot (organization {})", o.id.as_str()),
                "PermissionModel": "SERVICE_MANAGED",
                "AutoDeployment": {"Enabled": true, "RetainStacksOnAccountRemoval": false},
                "Capabilities": ["CAPABILITY_NAMED_IAM"],
                "OperationPreferences": {
                    "FailureTolerancePercentage": 25,
                    "MaxConcurrentPercentage": 25,
                    "RegionConcurrencyType": "PARALLEL"
                },
                "Parameters": [{"ParameterKey": ROLE_NAME_PARAMETER, "ParameterValue": {"Ref": MEMBER_ROLE_PARAMETER}}],
                "StackInstancesGroup": [{
                    "DeploymentTargets": {"OrganizationalUnitIds": {"Ref": TARGETS_PARAMETER}},
                    // One region: the role is global, and a second changes nothing.
                    "Regions": [{"Ref": "AWS::Region"}]
                }],
                "TemplateBody": serde_json::to_string(member).expect("templates serialize")
            }
        }),
    );
    let targets: Vec<&str> = o.organizational_unit_ids.iter().map(|t| t.as_str()).collect();
    let mut targets_param = json!({
        "Type": "CommaDelimitedList",
        "Description": "Organizational units (ou-…) whose accounts connect, or the root id (r-…) for the whole organization"
    });
    if !targets.is_empty() {
        targets_param["Default"] = json!(targets.join(","));
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("Connects the AWS Organization's accounts to Spot (organization {}).", o.id.as_str()),
        "Parameters": {
            ROLE_NAME_PARAMETER: {
                "Type": "String",
                "Default": default_role_name(mgmt),
                "AllowedPattern": "[\\w+=,.@-]{1,64}",
                "Description": "Name of the IAM role Spot will assume in this management account"
            },
            MEMBER_ROLE_PARAMETER: {
                "Type": "String",
                "Default": member_role_name(o),
                "AllowedPattern": "[\\w+=,.@-]{1,64}",
                "Description": "Name of the IAM role Spot will assume in each member account"
            },
            TARGETS_PARAMETER: targets_param
        },
        "Resources": resources,
        "Outputs": {
            "RoleArn": {"Description": "The role Spot assumes in the management account", "Value": {"Fn::GetAtt": ["Role", "Arn"]}},
            "StackSetId": {"Description": "The StackSet that connects the members", "Value": {"Ref": STACK_SET_ID}}
        }
    })
}
