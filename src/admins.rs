//! `roster admins add`: the operators' bootstrap of the top admins (SPEC §12.1), who then
//! hand registration codes down the tree from the pages.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::database::{DatabaseArgs, with_db};
use crate::out::say;

#[derive(Subcommand)]
pub enum AdminsCommand {
    /// Create an admin whose initial password is the last 8 characters of the ID number,
    /// to be changed at first login.
    Add(AddArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// Full name of the organisation.
    #[arg(long)]
    org: String,
    /// The admin's ID number (the account name).
    #[arg(long)]
    id: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    phone: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn run(command: AdminsCommand) -> Result<ExitCode> {
    let AdminsCommand::Add(a) = command;
    let person =
        registry::accounts::check_person(&a.name, &a.id, &a.phone, pipeline::today_in_china())?;
    let initial = person.id_number[person.id_number.len() - 8..].to_string();
    with_db(&a.db.database_url, async |pool| {
        jobs::setup(&pool).await?;
        let hash = tokio::task::spawn_blocking(move || registry::accounts::hash_password(&initial))
            .await?;
        registry::accounts::bootstrap_admin(
            &pool,
            &registry::accounts::NewAdmin {
                org: &a.org,
                name: &person.name,
                id_number: &person.id_number,
                phone: &person.phone,
                password_hash: hash,
                must_change_password: true,
            },
        )
        .await?;
        say!(
            "已添加{}的管理员 {}（账号 {}，初始密码为身份证号码后8位，首次登录须修改）",
            a.org,
            person.name,
            pipeline::text::mask(&person.id_number)
        );
        Ok(ExitCode::SUCCESS)
    })
}
