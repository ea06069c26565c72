//! `aidledger.v1.Projections` over gRPC: each call runs its query on a
//! blocking thread under the model's read lock.

use std::sync::Arc;

use aidledger_wire::pb;
use aidledger_wire::pb::projections_server::Projections;
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::model::Model;
use crate::read::QueryError;
use crate::wire;

/// The service: the shared model and the query defaults.
#[derive(Clone, Debug)]
pub struct ProjectionsService {
    shared: Arc<Shared>,
    excess_percent: u32,
}

impl ProjectionsService {
    /// Serves `shared`; overlap findings tolerate deliveries up to
    /// `excess_percent` over a published need unless a request says otherwise.
    pub fn new(shared: Arc<Shared>, excess_percent: u32) -> Self {
        ProjectionsService {
            shared,
            excess_percent,
        }
    }

    async fn query<T: Send + 'static>(
        &self,
        run: impl FnOnce(&Model) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let shared = Arc::clone(&self.shared);
        let answer = tokio::task::spawn_blocking(move || {
            let model = shared.read();
            run(&model).map_err(|error| match error {
                QueryError::InvalidArgument(detail) => Status::invalid_argument(detail),
                QueryError::NotFound(detail) => Status::not_found(detail),
            })
        })
        .await
        .map_err(|e| Status::internal(format!("query task failed: {e}")))??;
        Ok(Response::new(answer))
    }
}

#[tonic::async_trait]
impl Projections for ProjectionsService {
    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ProjectionStatus>, Status> {
        let follow = self.shared.status();
        self.query(move |model| Ok(wire::status(model, &follow)))
            .await
    }

    async fn list_balances(
        &self,
        request: Request<pb::ListBalancesRequest>,
    ) -> Result<Response<pb::ListBalancesResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_balances(model, &request))
            .await
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_transfers(model, &request))
            .await
    }

    async fn list_pledges(
        &self,
        request: Request<pb::ListPledgesRequest>,
    ) -> Result<Response<pb::ListPledgesResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_pledges(model, &request))
            .await
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_organizations(model, &request))
            .await
    }

    async fn list_communes(
        &self,
        request: Request<pb::ListCommunesRequest>,
    ) -> Result<Response<pb::ListCommunesResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_communes(model, &request))
            .await
    }

    async fn get_commune(
        &self,
        request: Request<pb::GetCommuneRequest>,
    ) -> Result<Response<pb::CommuneView>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::get_commune(model, &request))
            .await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_deliveries(model, &request))
            .await
    }

    async fn get_plan_progress(
        &self,
        request: Request<pb::GetPlanProgressRequest>,
    ) -> Result<Response<pb::PlanProgress>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::plan_progress(model, &request))
            .await
    }

    async fn list_overlaps(
        &self,
        request: Request<pb::ListOverlapsRequest>,
    ) -> Result<Response<pb::ListOverlapsResponse>, Status> {
        let request = request.into_inner();
        let excess = self.excess_percent;
        self.query(move |model| wire::list_overlaps(model, &request, excess))
            .await
    }

    async fn list_overlap_events(
        &self,
        request: Request<pb::ListOverlapEventsRequest>,
    ) -> Result<Response<pb::ListOverlapEventsResponse>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::list_overlap_events(model, &request))
            .await
    }

    async fn get_recognition(
        &self,
        request: Request<pb::GetRecognitionRequest>,
    ) -> Result<Response<pb::Recognition>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::recognition(model, &request))
            .await
    }

    async fn trace_receipt(
        &self,
        request: Request<pb::TraceReceiptRequest>,
    ) -> Result<Response<pb::ReceiptTrace>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::trace_receipt(model, &request))
            .await
    }

    async fn trace_delivery(
        &self,
        request: Request<pb::TraceDeliveryRequest>,
    ) -> Result<Response<pb::DeliveryTrace>, Status> {
        let request = request.into_inner();
        self.query(move |model| wire::trace_delivery(model, &request))
            .await
    }
}
