//! `varde bench national`: the bus at the size of the whole constituency
//! (357 kommuner, 15 fylkeskommuner, the CSIRT and 3 partners, about 1,500
//! keys), each figure beside a baseline from the same run:
//!
//! - the signed directory's size, sign and verify time ([`constituency`]);
//! - provisioning every user and consumer, and a re-provision after 10
//!   orgs change while messages flow (lost and duplicated counted);
//! - a community alert pulled and opened by every org's consumers, beside
//!   the same size of message unsealed;
//! - bytes of an advisory to 120 named orgs and filtered catch-up
//!   ([`catchup`]);
//! - nats-server's and this process's memory;
//! - with `--cluster`, the community alert on a 3-node R3 cluster.

mod catchup;
mod constituency;

use varde_testkit::synthetic::Synthetic;

use super::BenchServer;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Messages in the filled streams of the catch-up figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Also measure catch-up with the one-stream subject layouts.
    #[arg(long)]
    pub layouts: bool,
    /// Smaller sizes, same code paths (CI smoke test).
    #[arg(long)]
    pub quick: bool,
    /// Also measure the community alert on a 3-node cluster (R3 streams
    /// and consumers) started from .venv/.
    #[arg(long)]
    pub cluster: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let (_, _, named, linear) = catchup::named_bytes(a.quick)?;
    println!(
        "AMBER advisory (1 KiB) to 120 named orgs: {named} bytes in 120 copies; 120 single-org envelopes: {linear} bytes; ratio {:.3}",
        named as f64 / linear as f64
    );
    let world = if a.quick {
        Synthetic::national_sized(40, 4, 1)
    } else {
        Synthetic::national()
    };
    let bin = varde_testkit::find_nats_server().ok_or_else(|| {
        anyhow::anyhow!("nats-server not found: run deploy/dev/venv.sh or set VARDE_NATS_SERVER")
    })?;
    let dir = world.handle()?.current();
    let r3 = if a.cluster {
        let (open, unsealed) = constituency::cluster(&world).await?;
        println!(
            "R3 cluster: community alert opened by {open}; unsealed and pulled {unsealed}; p99 ratio {:.2}",
            open.p99 / unsealed.p99
        );
        format!(
            " community_open_p99_ms_r3={:.0} community_unsealed_p99_ms_r3={:.0}",
            open.p99, unsealed.p99
        )
    } else {
        String::new()
    };
    let f = constituency::run(world, &bin).await?;
    println!(
        "signed directory: {} orgs, {} keys, {} bytes; sign {:.1} ms, verify {:.1} ms (one raw Ed25519 verify of the same bytes {:.2} ms)",
        dir.orgs().len(),
        dir.keys().count(),
        f.directory_bytes,
        f.sign_ms,
        f.verify_ms,
        f.raw_verify_ms
    );
    println!(
        "community alert: sealed and opened {}; unsealed and pulled {}; p99 ratio {:.2}",
        f.open,
        f.unsealed,
        f.open.p99 / f.unsealed.p99
    );

    let n = if a.quick { 20_000 } else { a.messages };
    let server = BenchServer::start().await?;
    let client = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await?;
    let js = async_nats::jetstream::new(client);
    let catchup = catchup::run(&js, &dir, n, a.layouts).await?;
    println!(
        "nats-server with {} consumers on {} streams: {:.1} MiB; this process (every org's inbox): peak {:.1} MiB",
        f.consumers,
        f.streams,
        f.server_rss_mib,
        super::peak_rss_mib()
    );
    println!(
        "orgs={} keys={} users={} consumers={} streams={} directory_bytes={} directory_sign_ms={:.1} directory_verify_ms={:.1} provision_s={:.2} community_open_p50_ms={:.0} community_open_p99_ms={:.0} community_open_max_ms={:.0} community_unsealed_p99_ms={:.0} named_bytes_over_linear={:.3} messages={n} catchup_filtered_over_unfiltered={catchup:.3} reprovision_s={:.2} reprovision_sent={} reprovision_lost={} reprovision_duplicated={} nats_rss_mib={:.0} reader_rss_mib={:.0}{r3}",
        dir.orgs().len(),
        dir.keys().count(),
        f.users,
        f.consumers,
        f.streams,
        f.directory_bytes,
        f.sign_ms,
        f.verify_ms,
        f.provision_s,
        f.open.p50,
        f.open.p99,
        f.open.max,
        f.unsealed.p99,
        named as f64 / linear as f64,
        f.reprovision_s,
        f.reprovision_sent,
        f.lost,
        f.duplicated,
        f.server_rss_mib,
        super::peak_rss_mib()
    );
    Ok(())
}
