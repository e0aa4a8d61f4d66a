package views

import "net/url"

// EveryAccount is the ?account= value that lists every account's streams
// and consumers together, jetwatch's own and those read through the
// system account.
const EveryAccount = "*"

// AccountFilter is the viewer's account selector of the overview. It is
// shown only when every account is sampled (--all-accounts).
type AccountFilter struct {
	// Enabled is set when every account is sampled.
	Enabled bool
	// Selected is what is shown: EveryAccount, jetwatch's own account's
	// name, or another account's.
	Selected string
	// Own is jetwatch's own account's name, empty until the server told it.
	Own string
	// Others are the other accounts' names, as the last cycle read them.
	Others []string
	// Note says why the account selected could not be read this cycle.
	Note string
}

// Every says whether every account is shown.
func (f AccountFilter) Every() bool { return f.Selected == EveryAccount }

// Other is the other account shown alone, "" when jetwatch's own is, or
// every account.
func (f AccountFilter) Other() string {
	if f.Selected == EveryAccount || f.Selected == f.Own {
		return ""
	}
	return f.Selected
}

// AccountStreamURL is the path of a stream's page in account, "" for
// jetwatch's own.
func AccountStreamURL(account, stream string) string {
	return withAccount(StreamURL(stream), account)
}

// AccountConsumerURL is the path of a consumer's page in account, "" for
// jetwatch's own.
func AccountConsumerURL(account, stream, consumer string) string {
	return withAccount(ConsumerURL(stream, consumer), account)
}

// AccountOverviewURL is the overview showing account alone.
func AccountOverviewURL(account string) string { return withAccount("/", account) }

// withAccount adds ?account= to path for another account.
func withAccount(path, account string) string {
	if account == "" {
		return path
	}
	return path + "?account=" + url.QueryEscape(account)
}
