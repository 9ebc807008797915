//! `me2b org`: create, list and delete organisations on this node.

use crate::config::Settings;
use crate::{open_node, OrgCommand};
use me2b_domain::org::{OrgKind, Role, Roles};
use me2b_domain::text::Label;

pub(crate) async fn org(settings: &Settings, cmd: OrgCommand) -> anyhow::Result<()> {
    let node = open_node(settings).await?;
    match cmd {
        OrgCommand::Create { name, kind, roles } => {
            let name = Label::try_from(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
            let kind: OrgKind = kind.parse().map_err(|e| anyhow::anyhow!("--kind {e}"))?;
            let roles = roles
                .split(',')
                .map(|r| r.trim().parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .and_then(Roles::try_from)
                .map_err(|e| anyhow::anyhow!("--roles {e}"))?;
            let (org, key) = node
                .orgs
                .create(name, kind, roles)
                .await
                .map_err(anyhow::Error::new)?;
            out!(
                "organisation  {} ({}, {})",
                org.id,
                org.name,
                org.kind.as_str()
            );
            out!("api key id    {}", key.id);
            out!("roles         {}", key.roles.to_stored());
            out!("api key       {}", key.secret.expose());
            out!();
            out!("The API key is shown once and stored only as a hash: keep it now.");
        }
        OrgCommand::List => {
            for o in node.orgs.list().await.map_err(anyhow::Error::new)? {
                let state = if o.deleted_at.is_some() {
                    "deleted"
                } else {
                    "active"
                };
                out!("{}  {:<8}  {:<7}  {}", o.id, o.kind.as_str(), state, o.name);
            }
        }
        OrgCommand::Delete { org_id } => {
            let id = org_id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            node.orgs.delete(id).await.map_err(anyhow::Error::new)?;
            out!("organisation {id} deleted; its API keys are revoked");
        }
    }
    node.shutdown().await;
    Ok(())
}
