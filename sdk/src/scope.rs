//! The event being handled, kept in a task-local so that a produce inside a handler knows its cause
//! without the service passing ids around.
//!
//! [`Received::handle`](crate::Received::handle) enters the scope for you; [`handling`] and
//! [`handling_sync`] are for consumers the SDK does not wrap.

use std::future::Future;

use crate::context::EventContext;

tokio::task_local! {
    static CURRENT_EVENT: EventContext;
}

/// The event whose handling the current task is in, if any.
pub fn current_event() -> Option<EventContext> {
    CURRENT_EVENT.try_with(Clone::clone).ok()
}

/// Runs `fut` as the handling of `event`: events produced inside it are caused by `event`.
pub async fn handling<F: Future>(event: EventContext, fut: F) -> F::Output {
    CURRENT_EVENT.scope(event, fut).await
}

/// Runs `f` synchronously as the handling of `event`.
pub fn handling_sync<R>(event: EventContext, f: impl FnOnce() -> R) -> R {
    CURRENT_EVENT.sync_scope(event, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> EventContext {
        EventContext {
            event_id: Some(crate::context::Sourced {
                value: id.into(),
                header: "ce_id".into(),
            }),
            ..EventContext::default()
        }
    }

    #[tokio::test]
    async fn scope_is_visible_inside_and_gone_outside() {
        assert!(current_event().is_none());
        let seen = handling(event("e-1"), async {
            tokio::task::yield_now().await;
            current_event().and_then(|e| e.id().map(str::to_owned))
        })
        .await;
        assert_eq!(seen.as_deref(), Some("e-1"));
        assert!(current_event().is_none());
    }

    #[test]
    fn nested_scopes_see_the_innermost_event() {
        handling_sync(event("outer"), || {
            handling_sync(event("inner"), || {
                assert_eq!(current_event().unwrap().id(), Some("inner"));
            });
            assert_eq!(current_event().unwrap().id(), Some("outer"));
        });
    }
}
