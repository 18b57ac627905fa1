package live

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// IsTransient tells a MongoDB error worth retrying from the last committed batch: network
// errors, server selection timeouts while a server restarts, and a lost cursor. A reply the
// driver refuses as too large is labelled a network error but comes back the same when asked
// again, so it is not transient (Scan asks for smaller replies instead); nor is a *ReadError.
func IsTransient(err error) bool {
	var re *ReadError
	if IsReplyTooLarge(err) || errors.As(err, &re) {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		// 43 CursorNotFound, 91 ShutdownInProgress, 189 PrimarySteppedDown, 11600 InterruptedAtShutdown,
		// 11602 InterruptedDueToReplStateChange, 10107 NotWritablePrimary, 13435 NotPrimaryNoSecondaryOk.
		for _, code := range []int{43, 91, 189, 11600, 11602, 10107, 13435} {
			if se.HasErrorCode(code) {
				return true
			}
		}
		return se.HasErrorLabel("RetryableError") || se.HasErrorLabel("TransientTransactionError")
	}
	var sel topology.ServerSelectionError
	return errors.As(err, &sel)
}
