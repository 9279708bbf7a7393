//! The ADS gRPC endpoint with responses framed here rather than by tonic's
//! encoder.
//!
//! tonic encodes every message of a stream into one buffer that it keeps,
//! at the size of the largest message, for as long as the stream is open:
//! with a RouteConfiguration of 10,000 routes, about a megabyte per
//! connected Envoy that is never used again. Here each response is encoded
//! into a buffer of exactly its size, handed to HTTP/2, and freed once
//! sent; requests are still decoded by tonic.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;
use tonic::codec::{Codec, Streaming};
use tonic::codegen::{Service, http};

use crate::ads::AdsStream;
use crate::delta::DeltaStream;
use crate::protocol::Protocol;
use crate::service::AdsService;
use crate::source::SnapshotSource;

const SOTW_PATH: &str = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// [`AdsService`] as a gRPC service for a tonic server.
#[derive(Debug)]
pub(crate) struct AdsGrpc<S> {
    service: AdsService<S>,
    max_message_bytes: usize,
}

impl<S> Clone for AdsGrpc<S> {
    fn clone(&self) -> Self {
        AdsGrpc { service: self.service.clone(), max_message_bytes: self.max_message_bytes }
    }
}

impl<S> AdsGrpc<S> {
    /// Serves `service`, refusing requests larger than `max_message_bytes`.
    pub(crate) fn new(service: AdsService<S>, max_message_bytes: usize) -> Self {
        AdsGrpc { service, max_message_bytes }
    }
}

impl<S> tonic::server::NamedService for AdsGrpc<S> {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<S: SnapshotSource> AdsGrpc<S> {
    fn stream<P, B>(&self, request: http::Request<B>) -> http::Response<tonic::body::Body>
    where
        P: Protocol,
        P::Request: Message + Default,
        P::Response: Message,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    {
        if let Some(encoding) = request.headers().get("grpc-encoding")
            && encoding.as_bytes() != b"identity"
        {
            return Status::unimplemented("compressed requests are not accepted").into_http();
        }
        let mut codec = tonic_prost::ProstCodec::<P::Response, P::Request>::default();
        let request =
            request.map(|body| Streaming::new_request(codec.decoder(), body, None, Some(self.max_message_bytes)));
        match self.service.open_stream::<P>(tonic::Request::from_http(request)) {
            Ok(responses) => {
                let mut response = http::Response::new(tonic::body::Body::new(ResponseBody { responses, done: false }));
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
                response
            }
            Err(status) => status.into_http(),
        }
    }
}

impl<S: SnapshotSource, B> Service<http::Request<B>> for AdsGrpc<S>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = match request.uri().path() {
            SOTW_PATH => self.stream::<AdsStream, B>(request),
            DELTA_PATH => self.stream::<DeltaStream, B>(request),
            other => Status::unimplemented(format!("no method {other}")).into_http(),
        };
        std::future::ready(Ok(response))
    }
}

/// The responses of one stream as gRPC frames, then its status as trailers.
struct ResponseBody<M> {
    responses: mpsc::Receiver<Result<M, Status>>,
    done: bool,
}

/// One length-prefixed, uncompressed gRPC message in a buffer of its size.
fn frame(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    message.encode_raw(&mut buf);
    buf.freeze()
}

fn trailers(status: &Status) -> Frame<Bytes> {
    let mut map = http::HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", http::HeaderValue::from_static("13"));
    }
    Frame::trailers(map)
}

impl<M: Message> http_body::Body for ResponseBody<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let frame = match std::task::ready!(self.responses.poll_recv(cx)) {
            Some(Ok(message)) => Frame::data(frame(&message)),
            Some(Err(status)) => {
                self.done = true;
                trailers(&status)
            }
            None => {
                self.done = true;
                trailers(&Status::ok(""))
            }
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
