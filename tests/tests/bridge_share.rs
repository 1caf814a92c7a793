//! Sharing rooms across two homeservers that do not federate: a message, a
//! reply, an edit, a redaction and a small file in a sharing room on A
//! appear (attributed, reply as reply, edit as edit, redaction as removal)
//! in the subscribed room on B and back, through the bus alone; nothing
//! echoes back; a message or file over the limits is answered in the room
//! and disturbs nothing else.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use varde_tests::MatrixUser;
use varde_tests::bridge::{BridgeProcess, body, bot_messages, eventually};
use varde_tests::pair::{Pair, upload};

const WAIT: Duration = Duration::from_secs(90);

fn token(what: &str) -> String {
    format!("{what}{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

async fn bot_post(user: &MatrixUser, room: &str, bot: &str, needle: &str) -> Result<Value> {
    eventually(&format!("`{needle}` in {room}"), WAIT, || async {
        let msgs = bot_messages(user, room, bot).await?;
        Ok(msgs.into_iter().find(|e| {
            body(&e["content"]).contains(needle)
                || e["content"]["m.new_content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(needle))
        }))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_share_across_two_homeservers_matrix() -> Result<()> {
    let p = Pair::start().await?;
    p.display_name("kari", "Kari Nordmann").await?;
    p.display_name("lars", "Lars Holm").await?;
    let room_a = p.room("kari", &["ola"], false).await?;
    let room_b = p.room("lars", &[], false).await?;
    let share = "[rooms.share]\ntlp = \"TLP:GREEN\"\nto = \"community\"\n";
    let cfg_a = p.config(
        &p.a,
        &format!("[[rooms]]\nroom = \"{room_a}\"\nname = \"share-a\"\n{share}"),
        "[sharing]\nmax_file_bytes = 4096\nmax_text_bytes = 8192\n",
    )?;
    let cfg_b = p.config(
        &p.b,
        &format!("[[rooms]]\nroom = \"{room_b}\"\nname = \"share-b\"\nlanguage = \"nb\"\n{share}"),
        "",
    )?;
    let (bridge_a, bridge_b) =
        tokio::try_join!(BridgeProcess::start(&cfg_a), BridgeProcess::start(&cfg_b))?;
    let kari = p.user("kari")?;
    let lars = p.user("lars")?;
    let bot_a = p.a.bot.user_id.clone();
    let bot_b = p.b.bot.user_id.clone();

    // The two homeservers really are apart: A cannot reach B's room.
    assert!(
        kari.join(&room_b).await.is_err(),
        "no federation between A and B"
    );

    // A message (formatted) on A, attributed on B.
    let t1 = token("hello");
    let first = kari
        .send_event(
            &room_a,
            "m.room.message",
            json!({
                "msgtype": "m.text",
                "body": format!("Phishing wave {t1}"),
                "format": "org.matrix.custom.html",
                "formatted_body": format!("<b>Phishing</b> wave <a href=\"https://evil.example\">{t1}</a><img src=\"mxc://x/y\">"),
            }),
        )
        .await?;
    let on_b = bot_post(&lars, &room_b, &bot_b, &t1).await?;
    let c = &on_b["content"];
    assert_eq!(
        body(c),
        format!("TLP:GREEN Kari Nordmann (Gjøvik kommune): Phishing wave {t1}")
    );
    let html = c["formatted_body"].as_str().unwrap();
    assert!(html.contains("<b>Phishing</b> wave"), "{html}");
    assert!(
        !html.contains("<a ") && !html.contains("<img"),
        "links and images are not carried over: {html}"
    );
    let on_b_id = on_b["event_id"].as_str().unwrap().to_string();

    // A reply on B to the relayed post appears on A as a reply to Kari's
    // original event.
    let t2 = token("reply");
    lars.send_event(
        &room_b,
        "m.room.message",
        json!({
            "msgtype": "m.text",
            "body": format!("We see it too {t2}"),
            "m.relates_to": { "m.in_reply_to": { "event_id": on_b_id } },
        }),
    )
    .await?;
    let on_a = bot_post(&kari, &room_a, &bot_a, &t2).await?;
    assert_eq!(
        body(&on_a["content"]),
        format!("TLP:GREEN Lars Holm (Lillehammer kommune): We see it too {t2}")
    );
    assert_eq!(
        on_a["content"]["m.relates_to"]["m.in_reply_to"]["event_id"], first,
        "the reply points at Kari's own event"
    );

    // An edit on A becomes an edit of B's post.
    let t3 = token("edited");
    kari.send_event(
        &room_a,
        "m.room.message",
        json!({
            "msgtype": "m.text",
            "body": format!("* Phishing wave {t3}"),
            "m.new_content": { "msgtype": "m.text", "body": format!("Phishing wave {t3}") },
            "m.relates_to": { "rel_type": "m.replace", "event_id": first },
        }),
    )
    .await?;
    let edit = bot_post(&lars, &room_b, &bot_b, &t3).await?;
    assert_eq!(edit["content"]["m.relates_to"]["rel_type"], "m.replace");
    assert_eq!(
        edit["content"]["m.relates_to"]["event_id"],
        on_b_id.as_str()
    );
    assert!(
        edit["content"]["m.new_content"]["body"]
            .as_str()
            .unwrap()
            .starts_with("TLP:GREEN Kari Nordmann (Gjøvik kommune): Phishing wave")
    );

    // A small file is carried; one over the limit is answered on A.
    let small = upload(&p.a, "kari", "ioc.txt", b"evil.example\n".to_vec()).await?;
    kari.send_event(
        &room_a,
        "m.room.message",
        json!({ "msgtype": "m.file", "body": "ioc.txt", "url": small, "info": { "size": 13, "mimetype": "text/plain" } }),
    )
    .await?;
    let big = upload(&p.a, "kari", "big.bin", vec![7u8; 10_000]).await?;
    let big_event = kari
        .send_event(
            &room_a,
            "m.room.message",
            json!({ "msgtype": "m.file", "body": "big.bin", "url": big, "info": { "size": 10_000 } }),
        )
        .await?;
    let answer = bot_post(&kari, &room_a, &bot_a, "File not shared").await?;
    assert!(body(&answer["content"]).contains("10000 bytes; the limit is 4096"));
    assert_eq!(
        answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
        big_event.as_str()
    );
    let file = eventually("the small file on B", WAIT, || async {
        let msgs = bot_messages(&lars, &room_b, &bot_b).await?;
        Ok(msgs
            .into_iter()
            .find(|e| e["content"]["msgtype"] == "m.file"))
    })
    .await?;
    assert_eq!(file["content"]["body"], "ioc.txt");

    // A message over the text limit is answered, not shared; Synapse itself
    // refuses a 100 kB event.
    let huge = "x".repeat(100_000);
    assert!(kari.send_text(&room_a, &huge).await.is_err());
    let long = format!("{} {}", token("long"), "y".repeat(10_000));
    kari.send_text(&room_a, &long).await?;
    bot_post(&kari, &room_a, &bot_a, "the limit is 8192").await?;

    // Posted once on B (edits aside), before the redaction removes it.
    let before: Vec<String> = bot_messages(&lars, &room_b, &bot_b)
        .await?
        .iter()
        .map(|e| body(&e["content"]).to_string())
        .collect();
    assert_eq!(
        before.iter().filter(|b| b.contains(&t1)).count(),
        1,
        "posted once on B: {before:?}"
    );

    // A redaction on A removes B's post.
    kari.request(
        reqwest::Method::PUT,
        &["rooms", &room_a, "redact", &first, "txn-redact-1"],
        &[],
        Some(&json!({})),
    )
    .await?;
    eventually("the post on B redacted", WAIT, || async {
        let ev = lars
            .request(
                reqwest::Method::GET,
                &["rooms", &room_b, "event", &on_b_id],
                &[],
                None,
            )
            .await?;
        Ok((ev["content"].as_object().is_some_and(|c| c.is_empty())
            && !ev["unsigned"]["redacted_because"].is_null())
        .then_some(()))
    })
    .await?;

    // Things flow after all that, and nothing ever came back to its origin.
    let t4 = token("after");
    kari.send_text(&room_a, &format!("Still here {t4}")).await?;
    bot_post(&lars, &room_b, &bot_b, &t4).await?;
    let a_posts: Vec<String> = bot_messages(&kari, &room_a, &bot_a)
        .await?
        .iter()
        .map(|e| body(&e["content"]).to_string())
        .collect();
    let b_posts: Vec<String> = bot_messages(&lars, &room_b, &bot_b)
        .await?
        .iter()
        .map(|e| body(&e["content"]).to_string())
        .collect();
    for t in [&t1, &t3, &t4] {
        assert!(
            !a_posts.iter().any(|b| b.contains(t.as_str())),
            "{t} echoed to A: {a_posts:?}"
        );
    }
    assert!(
        !b_posts.iter().any(|b| b.contains(&t2)),
        "reply echoed to B: {b_posts:?}"
    );
    assert!(
        !b_posts.iter().any(|b| b.contains("yyyy")),
        "the long message was not shared"
    );
    assert!(
        !b_posts.iter().any(|b| b.contains(&t1)),
        "the redacted post is gone from B: {b_posts:?}"
    );
    for (name, log) in [("A", bridge_a.log()), ("B", bridge_b.log())] {
        assert!(
            !log.contains(&t1) && !log.contains(&t2),
            "plaintext in bridge {name}'s log"
        );
    }
    Ok(())
}
