//! Who asked, as the invocation tells it: the authorizer's verdict for API
//! calls, the source for EventBridge, nothing more for a direct invocation.
//! The audit record and the derived idempotency key are built from it.

use crate::rights::Grants;
use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use crate::origin::Caller;
use crate::origin::MAX_CALLER_FIELD_CHARS;
use serde_json::Value;

/// Claims that name the person behind a delegated token, most specific first.
const USER_CLAIMS: [&str; 5] = [
    "upn",
    "preferred_username",
    "email",
    "username",
    "cognito:username",
];
/// Claims that name the application the token was issued to.
const APP_CLAIMS: [&str; 3] = ["azp", "appid", "client_id"];

impl Caller {
    pub(super) fn direct() -> Caller {
        Caller {
            kind: "direct".into(),
            ..Default::default()
        }
    }

    /// The caller of an event that could not be read at all.
    pub(super) fn unknown() -> Caller {
        Caller {
            kind: "unknown".into(),
            ..Default::default()
        }
    }

    pub(super) fn eventbridge(source: String, event_id: Option<String>) -> Caller {
        Caller {
            kind: "eventBridge".into(),
            principal: Some(source),
            event_id,
            ..Default::default()
        }
    }

    /// A queue's event source mapping: the queue, and the message as the
    /// event id.
    pub(super) fn queue(queue_arn: String, message_id: Option<String>) -> Caller {
        Caller {
            kind: "sqs".into(),
            principal: Some(queue_arn).filter(|q| !q.is_empty()),
            event_id: message_id,
            ..Default::default()
        }
    }

    /// The caller API Gateway vouches for. `fallback_arn` is the REST API's
    /// `identity.userArn` (IAM authorization on payload 1.0).
    pub(super) fn from_authorizer(
        authorizer: &ApiGatewayRequestAuthorizer,
        fallback_arn: Option<String>,
        source_ip: Option<String>,
    ) -> Caller {
        let mut caller = Caller {
            kind: "none".into(),
            source_ip,
            ..Default::default()
        };
        if let Some(iam) = &authorizer.iam
            && iam.user_arn.is_some()
        {
            caller.kind = "iam".into();
            caller.principal = iam.user_arn.clone();
        } else if let Some(jwt) = &authorizer.jwt {
            caller.set_jwt(|k| jwt.claims.get(k).cloned());
            let claim = |k: &str| jwt.claims.get(k).map(|v| Value::String(v.clone()));
            let mut grants = Grants::from_claims(claim("roles").as_ref(), claim("scp").as_ref());
            grants.scopes.extend(jwt.scopes.iter().flatten().cloned());
            caller.grants = Some(grants);
        } else if let Some(Value::Object(claims)) = authorizer.fields.get("claims") {
            // REST API with a Cognito / JWT authorizer.
            caller.set_jwt(|k| claims.get(k).and_then(Value::as_str).map(str::to_string));
            caller.grants = Some(Grants::from_claims(claims.get("roles"), claims.get("scp")));
        } else if !authorizer.fields.is_empty() {
            caller.kind = "lambdaAuthorizer".into();
            caller.principal = ["principalId", "sub", "user"].iter().find_map(|k| {
                authorizer
                    .fields
                    .get(*k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        } else if fallback_arn.is_some() {
            caller.kind = "iam".into();
            caller.principal = fallback_arn;
        }
        caller
    }

    /// Authorizers hand claims over as strings.
    fn set_jwt(&mut self, claim: impl Fn(&str) -> Option<String>) {
        self.kind = "jwt".into();
        self.principal = claim("sub");
        self.user = USER_CLAIMS.iter().find_map(|k| claim(k));
        self.app_id = APP_CLAIMS.iter().find_map(|k| claim(k));
        self.principal_type = principal_type(
            claim("idtyp").as_deref(),
            self.user.is_some(),
            claim("scp").is_some(),
            self.app_id.is_some(),
        );
    }

    pub(super) fn limit_lengths(&mut self) {
        for field in [
            &mut self.principal,
            &mut self.user,
            &mut self.app_id,
            &mut self.requested_by,
            &mut self.source_ip,
            &mut self.event_id,
            &mut self.batch_id,
        ] {
            if let Some(value) = field
                && let Some((at, _)) = value.char_indices().nth(MAX_CALLER_FIELD_CHARS)
            {
                value.truncate(at);
            }
        }
    }
}

/// Entra's optional `idtyp` claim says it outright. Without it: a user name
/// or a delegated scope (`scp`, only in tokens issued for a signed-in user)
/// means a user; an application id alone means the app's own token (client
/// credentials carry `roles`, never `scp` or `upn`). Anything else stays
/// unsaid rather than guessed.
fn principal_type(
    idtyp: Option<&str>,
    has_user: bool,
    has_scp: bool,
    has_app: bool,
) -> Option<&'static str> {
    match idtyp {
        Some("app") => Some("app"),
        Some("user") => Some("user"),
        _ if has_user || has_scp => Some("user"),
        _ if has_app => Some("app"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt_caller(claims: Value) -> Caller {
        let authorizer: ApiGatewayRequestAuthorizer =
            serde_json::from_value(json!({"jwt": {"claims": claims, "scopes": null}})).unwrap();
        Caller::from_authorizer(&authorizer, None, None)
    }

    /// Claims as Entra issues them (v2 and v1 access tokens), reduced to
    /// what the caller reads.
    #[test]
    fn jwt_users_and_apps_are_told_apart() {
        let user = jwt_caller(json!({"sub": "s1", "upn": "agent@contoso.com",
            "azp": "c0ffee00-0000-4000-8000-000000000001", "scp": "Passcode.Reset"}));
        assert_eq!(
            (
                user.kind.as_str(),
                user.principal_type,
                user.user.as_deref()
            ),
            ("jwt", Some("user"), Some("agent@contoso.com"))
        );
        assert_eq!(
            user.app_id.as_deref(),
            Some("c0ffee00-0000-4000-8000-000000000001")
        );

        // Client credentials, v2 token: azp, roles, no upn, no scp.
        let app = jwt_caller(
            json!({"sub": "sp-object-id", "azp": "app-v2", "roles": "Passcode.Reset.All"}),
        );
        assert_eq!(app.principal_type, Some("app"));
        assert_eq!(app.app_id.as_deref(), Some("app-v2"));
        assert_eq!(app.user, None);
        assert_eq!(app.principal.as_deref(), Some("sp-object-id"));
        // v1 token: appid.
        let app = jwt_caller(json!({"sub": "sp", "appid": "app-v1"}));
        assert_eq!(
            (app.principal_type, app.app_id.as_deref()),
            (Some("app"), Some("app-v1"))
        );
        // The optional idtyp claim wins over inference.
        let app = jwt_caller(json!({"sub": "sp", "idtyp": "app", "azp": "a", "email": "x@y"}));
        assert_eq!(app.principal_type, Some("app"));
        // A delegated token without any name claim is still a user.
        let user = jwt_caller(json!({"sub": "s", "azp": "a", "scp": "x"}));
        assert_eq!(user.principal_type, Some("user"));
        // Nothing to tell by: left unsaid.
        let bare = jwt_caller(json!({"claim1": "value1"}));
        assert_eq!((bare.kind.as_str(), bare.principal_type), ("jwt", None));
        assert_eq!(serde_json::to_value(&bare).unwrap(), json!({"kind": "jwt"}));
    }
}
