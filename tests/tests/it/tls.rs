//! TLS and mutual TLS on the real server.

use aidledger::server::TlsMaterial;
use aidledger_tests::TestServer;
use aidledger_tests::generator::Generator;
use aidledger_wire::pb;
use pb::ledger_client::LedgerClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn self_signed(name: &str) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

async fn tls_client(
    port: u16,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<LedgerClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(LedgerClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_with_a_trusted_certificate() {
    let (server_cert, server_key) = self_signed("localhost");
    let (client_cert, client_key) = self_signed("agency.example");
    let dir = tempfile::tempdir().unwrap();
    let generator = Generator::new(707);
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.tls = Some(TlsMaterial {
            cert_pem: server_cert.clone(),
            key_pem: server_key.clone(),
            // The client's self-signed certificate is its own CA.
            client_ca_pem: Some(client_cert.clone()),
        });
    })
    .await;

    let mut trusted = tls_client(server.port, &server_cert, Some((&client_cert, &client_key)))
        .await
        .expect("a TLS connection");
    let checkpoint = trusted
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .expect("a client with a trusted certificate is served")
        .into_inner();
    assert_eq!(checkpoint.size, 0);

    // Without a client certificate the handshake or the first call fails.
    let anonymous = match tls_client(server.port, &server_cert, None).await {
        Ok(mut client) => client
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!anonymous, "a client without a certificate was served");

    // A plaintext client is not served either.
    let plaintext = match LedgerClient::connect(server.url()).await {
        Ok(mut client) => client
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!plaintext, "a plaintext client was served by a TLS server");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_follows_a_ledger_behind_mutual_tls() {
    let (server_cert, server_key) = self_signed("localhost");
    let (client_cert, client_key) = self_signed("projector.example");
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(708);
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.tls = Some(TlsMaterial {
            cert_pem: server_cert.clone(),
            key_pem: server_key.clone(),
            client_ca_pem: Some(client_cert.clone()),
        });
    })
    .await;
    let mut agency = tls_client(server.port, &server_cert, Some((&client_cert, &client_key)))
        .await
        .unwrap();
    let mut events = generator.setup(&server.vkey);
    events.extend(generator.events(200));
    let size = events.len() as u64;
    let results = agency
        .append_batch(pb::AppendBatchRequest { events })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results.iter().all(|r| r.code == 0));

    let mut config = aidledger_projector::server::ProjectorConfig::new(
        dir.path().join("projections.redb"),
        "127.0.0.1:0".parse().unwrap(),
        &format!("https://localhost:{}", server.port),
        &server.vkey,
    );
    config.follower.checkpoint_interval = std::time::Duration::from_millis(100);
    config.follower.connect.tls = Some(aidledger_client::TlsOptions {
        ca_pem: Some(server_cert.into_bytes()),
        client_cert_pem: Some(client_cert.into_bytes()),
        client_key_pem: Some(client_key.into_bytes()),
        domain: None,
    });
    let projector = aidledger_projector::server::Projector::build(config)
        .await
        .unwrap();
    let shared = projector.shared();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run_until_stopped(async {
        let _ = stopped.await;
    }));
    // Every entry applied, and the ledger's checkpoint of that size cited.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let cited = shared
            .read()
            .position
            .checkpoint
            .as_ref()
            .map_or(0, |c| c.size);
        if cited == size {
            break;
        }
        assert_eq!(shared.status().halted, None);
        assert!(
            tokio::time::Instant::now() < deadline,
            "not caught up over TLS"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.stop().await;
}
