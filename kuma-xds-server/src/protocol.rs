//! What the gRPC service needs of a protocol state machine, so that one
//! stream loop serves both State of the World ([`AdsStream`]) and
//! incremental ([`DeltaStream`]) ADS.

use kuma_xds_gen::envoy_types::pb::envoy::config::core::v3::Node;
use kuma_xds_gen::envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use kuma_xds_gen::{EncodedSnapshot, ResourceType};

use crate::ads::{AdsStream, Outcome};
use crate::delta::DeltaStream;
use crate::history::NodeHistory;

/// One variant of the ADS protocol.
pub(crate) trait Protocol: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    /// Its name in `/dataplanes`.
    const NAME: &'static str;

    fn with_history(history: NodeHistory) -> Self;
    fn history(&self) -> &NodeHistory;
    fn node(request: &Self::Request) -> Option<&Node>;
    fn type_url(request: &Self::Request) -> &str;
    fn response_nonce(request: &Self::Request) -> &str;
    fn response_type_url(response: &Self::Response) -> &str;
    fn nonce(response: &Self::Response) -> &str;
    fn handle_request(&mut self, request: &Self::Request, snapshot: &EncodedSnapshot) -> Outcome<Self::Response>;
    /// Responses for a new snapshot; `previous` is the one the stream held.
    fn handle_snapshot(&mut self, previous: &EncodedSnapshot, snapshot: &EncodedSnapshot) -> Vec<Self::Response>;
    fn sent_version(&self, t: ResourceType) -> Option<&str>;
    fn acked(&self, t: ResourceType) -> Option<&str>;
    fn nacked(&self, t: ResourceType) -> Option<(&str, &str)>;
}

impl Protocol for AdsStream {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const NAME: &'static str = "sotw";

    fn with_history(history: NodeHistory) -> Self {
        AdsStream::with_history(history)
    }
    fn history(&self) -> &NodeHistory {
        AdsStream::history(self)
    }
    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn type_url(request: &DiscoveryRequest) -> &str {
        &request.type_url
    }
    fn response_nonce(request: &DiscoveryRequest) -> &str {
        &request.response_nonce
    }
    fn response_type_url(response: &DiscoveryResponse) -> &str {
        &response.type_url
    }
    fn nonce(response: &DiscoveryResponse) -> &str {
        &response.nonce
    }
    fn handle_request(&mut self, request: &DiscoveryRequest, snapshot: &EncodedSnapshot) -> Outcome {
        AdsStream::handle_request(self, request, snapshot)
    }
    fn handle_snapshot(&mut self, previous: &EncodedSnapshot, snapshot: &EncodedSnapshot) -> Vec<DiscoveryResponse> {
        AdsStream::handle_snapshot(self, previous, snapshot)
    }
    fn sent_version(&self, t: ResourceType) -> Option<&str> {
        AdsStream::sent_version(self, t)
    }
    fn acked(&self, t: ResourceType) -> Option<&str> {
        AdsStream::acked(self, t)
    }
    fn nacked(&self, t: ResourceType) -> Option<(&str, &str)> {
        AdsStream::nacked(self, t)
    }
}

impl Protocol for DeltaStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const NAME: &'static str = "delta";

    fn with_history(history: NodeHistory) -> Self {
        DeltaStream::with_history(history)
    }
    fn history(&self) -> &NodeHistory {
        DeltaStream::history(self)
    }
    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }
    fn type_url(request: &DeltaDiscoveryRequest) -> &str {
        &request.type_url
    }
    fn response_nonce(request: &DeltaDiscoveryRequest) -> &str {
        &request.response_nonce
    }
    fn response_type_url(response: &DeltaDiscoveryResponse) -> &str {
        &response.type_url
    }
    fn nonce(response: &DeltaDiscoveryResponse) -> &str {
        &response.nonce
    }
    fn handle_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
        snapshot: &EncodedSnapshot,
    ) -> Outcome<DeltaDiscoveryResponse> {
        DeltaStream::handle_request(self, request, snapshot)
    }
    fn handle_snapshot(
        &mut self,
        _previous: &EncodedSnapshot,
        snapshot: &EncodedSnapshot,
    ) -> Vec<DeltaDiscoveryResponse> {
        // The stream knows what Envoy has of each resource.
        DeltaStream::handle_snapshot(self, snapshot)
    }
    fn sent_version(&self, t: ResourceType) -> Option<&str> {
        DeltaStream::sent_version(self, t)
    }
    fn acked(&self, t: ResourceType) -> Option<&str> {
        DeltaStream::acked(self, t)
    }
    fn nacked(&self, t: ResourceType) -> Option<(&str, &str)> {
        DeltaStream::nacked(self, t)
    }
}
