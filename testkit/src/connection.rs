//! One client connection: read a frame, decode, apply intercepts, dispatch, write the answer.
//!
//! Requests on a connection are served one at a time, in order, as Kafka does (it mutes a
//! channel until the response to its current request is sent).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_client::protocol::frame::{read_frame, DEFAULT_MAX_FRAME_BYTES};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::control::{Action, RequestRecord};
use crate::decode::{decode_request, DecodedRequest};
use crate::error::Error;
use crate::handlers::{self, api_versions, errors, fetch, Ctx};
use crate::interception;
use crate::security::{Gate, SaslState};
use crate::state::lock;

/// Serves a connection (a TCP socket or an in-memory pipe; after a TLS handshake when the
/// cluster has TLS) from `peer` until the client closes it, a frame is bad, or the task is
/// aborted.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, ctx: Ctx, peer: String) {
    let tls = lock(&ctx.shared).settings.tls.clone();
    match tls {
        None => serve_stream(stream, ctx, peer).await,
        Some(tls) => match tls.acceptor.accept(stream).await {
            Ok(stream) => serve_stream(stream, ctx, peer).await,
            Err(e) => {
                tracing::info!(broker = ctx.broker, %peer, error = %e, "TLS handshake failed");
            }
        },
    }
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(stream: S, ctx: Ctx, peer: String) {
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let sasl = lock(&ctx.shared).settings.sasl.clone();
    let mut sasl_state = SaslState::new(sasl.as_ref());
    loop {
        let max_bytes = sasl_state.max_frame_bytes(DEFAULT_MAX_FRAME_BYTES);
        let frame = match read_frame(&mut rd, max_bytes).await {
            Ok(Some(f)) => f.freeze(),
            Ok(None) => {
                tracing::trace!(broker = ctx.broker, %peer, "client closed the connection");
                return;
            }
            Err(e) => {
                tracing::warn!(broker = ctx.broker, %peer, error = %e, "closing connection: bad frame");
                return;
            }
        };
        let reply = match decode_request(frame) {
            Ok(req) => match sasl_state.gate(sasl.as_ref(), &req.body) {
                Gate::Pass => match serve_request(&ctx, req).await {
                    Outcome::Reply(bytes) => bytes,
                    Outcome::Silent => continue,
                    Outcome::Close => return,
                    Outcome::Hang => {
                        hang(&mut rd, &ctx, &peer).await;
                        return;
                    }
                },
                Gate::Close(reason) => {
                    tracing::info!(broker = ctx.broker, %peer, reason, "closing connection");
                    return;
                }
                Gate::Answer { response, close } => {
                    record(&ctx, &req);
                    let version = req.header.request_api_version;
                    let Ok(bytes) =
                        encode(req.api_key, version, req.header.correlation_id, &response)
                    else {
                        return;
                    };
                    if wr.write_all(&bytes).await.is_err() || close {
                        tracing::info!(broker = ctx.broker, %peer, "closing connection after a SASL refusal");
                        let _ = wr.shutdown().await;
                        return;
                    }
                    continue;
                }
            },
            Err(Error::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                version,
                correlation_id,
            }) => {
                tracing::info!(broker = ctx.broker, %peer, version, "ApiVersions at an unknown version: answering v0 UNSUPPORTED_VERSION");
                match encode(
                    ApiKey::ApiVersions,
                    0,
                    correlation_id,
                    &ResponseKind::ApiVersions(api_versions::unsupported()),
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(broker = ctx.broker, error = %e, "closing connection");
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(broker = ctx.broker, %peer, error = %e, "closing connection: bad request");
                return;
            }
        };
        if let Err(e) = wr.write_all(&reply).await {
            tracing::debug!(broker = ctx.broker, %peer, error = %e, "closing connection: write failed");
            return;
        }
    }
}

enum Outcome {
    Reply(Bytes),
    /// No response by protocol (acks=0).
    Silent,
    Close,
    /// Never answer again (the NoResponse intercept).
    Hang,
}

async fn serve_request(ctx: &Ctx, req: DecodedRequest) -> Outcome {
    let DecodedRequest {
        api_key,
        header,
        body,
    } = req;
    let version = header.request_api_version;
    tracing::trace!(broker = ctx.broker, ?api_key, version, correlation_id = header.correlation_id, client = ?header.client_id, "request");
    let action = {
        let mut st = lock(&ctx.shared);
        st.requests.push(request_record(ctx, api_key, &header));
        interception::take_action(&mut st, ctx.broker, api_key, &body)
    };
    let (action, only, rule) = match action {
        Some(m) => (Some(m.action), m.partition, m.rule),
        None => (None, None, 0),
    };
    let response = match action {
        None => handlers::dispatch(ctx, &header, body).await,
        Some(Action::CorruptRecords { at }) => {
            let mut response = handlers::dispatch(ctx, &header, body).await;
            if let Some(ResponseKind::Fetch(fetch)) = response.as_mut() {
                let mut st = lock(&ctx.shared);
                let damaged = fetch::corrupt_records(fetch, only.as_ref(), at, |id| {
                    st.topic_ids.get(id).cloned()
                });
                if !damaged.is_empty() {
                    interception::use_once(&mut st, rule);
                }
                tracing::debug!(
                    broker = ctx.broker,
                    ?damaged,
                    "intercept: corrupted fetched batches"
                );
            }
            response
        }
        Some(Action::Delay(d)) => {
            tracing::debug!(broker = ctx.broker, ?api_key, delay = ?d, "intercept: delaying request");
            tokio::time::sleep(d).await;
            handlers::dispatch(ctx, &header, body).await
        }
        Some(Action::Error(code)) => {
            tracing::debug!(
                broker = ctx.broker,
                ?api_key,
                ?code,
                "intercept: answering with an error"
            );
            match errors::error_response(&body, version, code.code()) {
                Some(r) => Some(r),
                None => return Outcome::Close,
            }
        }
        Some(Action::DropConnection) => {
            tracing::debug!(
                broker = ctx.broker,
                ?api_key,
                "intercept: dropping the connection"
            );
            return Outcome::Close;
        }
        Some(Action::NoResponse) => {
            tracing::debug!(
                broker = ctx.broker,
                ?api_key,
                "intercept: swallowing the request"
            );
            return Outcome::Hang;
        }
    };
    let Some(response) = response else {
        return Outcome::Silent;
    };
    match encode(api_key, version, header.correlation_id, &response) {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(e) => {
            tracing::error!(broker = ctx.broker, error = %e, "closing connection");
            Outcome::Close
        }
    }
}

fn request_record(ctx: &Ctx, api_key: ApiKey, header: &RequestHeader) -> RequestRecord {
    RequestRecord {
        broker: ctx.broker,
        api_key,
        version: header.request_api_version,
        client_id: header.client_id.as_ref().map(|c| c.to_string()),
    }
}

/// Logs a request the SASL gate answered itself.
fn record(ctx: &Ctx, req: &DecodedRequest) {
    let record = request_record(ctx, req.api_key, &req.header);
    lock(&ctx.shared).requests.push(record);
}

/// Encodes a whole response frame: size, header at the API's header version, body.
fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, Error> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out, api_key.response_header_version(version))
        .and_then(|()| response.encode(&mut out, version))
        .map_err(|e| Error::Encode {
            api_key,
            version,
            reason: format!("{e:#}"),
        })?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// Reads and discards until the client goes away.
async fn hang<R: tokio::io::AsyncRead + Unpin>(rd: &mut R, ctx: &Ctx, peer: &str) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = rd.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
    tracing::trace!(broker = ctx.broker, %peer, "hung connection closed by the client");
}
