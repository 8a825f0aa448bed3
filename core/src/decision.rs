//! Outcomes and the numbers reported with every decision (docs/semantics.md#leaky-bucket, docs/semantics.md#outcomes-and-http-statuses).

/// What a limiter answered. The HTTP mapping is [`Outcome::http_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    /// Pass.
    Allowed = 0,
    /// Rate limit exceeded; `retry_after` says when the same request would pass (HTTP 429).
    Limited = 1,
    /// Protective shedding: a concurrency cap, or a full key table in fail-closed mode (HTTP 503).
    Overloaded = 2,
    /// Can never pass: the cost exceeds the capacity, or a request-shape rule such as deep
    /// pagination refuses it. Retrying cannot help (HTTP 429).
    Never = 3,
}

impl Outcome {
    /// The HTTP status a gateway answers with: `None` for [`Outcome::Allowed`] (the upstream's
    /// answer stands), 429 for `Limited` and `Never`, 503 for `Overloaded`.
    pub const fn http_status(self) -> Option<u16> {
        match self {
            Outcome::Allowed => None,
            Outcome::Limited | Outcome::Never => Some(429),
            Outcome::Overloaded => Some(503),
        }
    }

    /// `true` for [`Outcome::Allowed`].
    pub const fn is_allowed(self) -> bool {
        matches!(self, Outcome::Allowed)
    }

    /// Whether a client may retry a request that got this outcome: `Limited` and `Overloaded`
    /// may pass later; `Never` cannot; `Allowed` needs no retry.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Outcome::Limited | Outcome::Overloaded)
    }
}

/// A decision and the numbers that describe the limiter after it.
///
/// Times are in the caller's ticks. For a denial, a `Never` or a peek, `used`, `remaining` and
/// `reset_after` describe the unchanged state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a decision that is not looked at enforces nothing"]
pub struct Decision {
    /// What to do with the request. Equal to `verdict` unless shadow mode or a fail-open table
    /// turned a refusal into [`Outcome::Allowed`].
    pub outcome: Outcome,
    /// What the limiter itself decided.
    pub verdict: Outcome,
    /// The capacity: a bucket's burst, a window's limit, a concurrency cap.
    pub limit: u64,
    /// Units in use after the decision (an admitted request included), rounded up.
    pub used: u64,
    /// `limit - used`: how many cost-1 requests would pass back to back now.
    pub remaining: u64,
    /// Ticks until the same request would pass with no other traffic: `Some(0)` when admitted,
    /// `None` for [`Outcome::Never`] ("never").
    pub retry_after: Option<u64>,
    /// Ticks until the limiter is empty again (a bucket drained, a window over).
    pub reset_after: u64,
    /// Bit set of [`Decision::SHADOW`] and [`Decision::FAIL_OPEN`].
    pub flags: u8,
}

impl Decision {
    /// Flag: computed in shadow (dry-run) mode; `verdict` is what enforcement would have done.
    pub const SHADOW: u8 = 1;
    /// Flag: a key table had no room for the key and its fail-open policy allowed the request.
    pub const FAIL_OPEN: u8 = 2;

    /// `true` when the request may pass.
    pub const fn is_allowed(&self) -> bool {
        self.outcome.is_allowed()
    }

    /// Shadow (dry-run) mode, docs/semantics.md#shadow-mode: the state was already updated as if enforced (a refusal
    /// changes nothing), and the outcome becomes [`Outcome::Allowed`] while `verdict` keeps what
    /// enforcement would have answered.
    ///
    /// ```
    /// use tollgate::{LeakyBucket, Outcome, Quota};
    /// let bucket = LeakyBucket::new(Quota::new(1, 1, 1_000).unwrap());
    /// assert!(bucket.decide(0, 1).unwrap().is_allowed());
    /// let d = bucket.decide(0, 1).unwrap().shadow();
    /// assert_eq!(d.outcome, Outcome::Allowed);
    /// assert!(d.would_limit());
    /// ```
    pub const fn shadow(mut self) -> Decision {
        self.outcome = Outcome::Allowed;
        self.flags |= Decision::SHADOW;
        self
    }

    /// In shadow mode: `true` if enforcement would have refused the request.
    pub const fn would_limit(&self) -> bool {
        self.flags & Decision::SHADOW != 0 && !self.verdict.is_allowed()
    }

    /// `true` if a full key table let the request through by its fail-open policy.
    pub const fn is_fail_open(&self) -> bool {
        self.flags & Decision::FAIL_OPEN != 0
    }

    /// A decision with `outcome == verdict` and no flags.
    pub(crate) const fn plain(
        verdict: Outcome,
        limit: u64,
        used: u64,
        retry_after: Option<u64>,
        reset_after: u64,
    ) -> Decision {
        Decision {
            outcome: verdict,
            verdict,
            limit,
            used,
            remaining: limit.saturating_sub(used),
            retry_after,
            reset_after,
            flags: 0,
        }
    }
}
