package policy

import "github.com/moat-platform/moat/config"

// platformDocs returns every Platform document of the repository. Decode
// fills Platforms; a Repo built in Go may set only Platform.
func platformDocs(repo *config.Repo) []*config.Platform {
	if len(repo.Platforms) > 0 {
		return repo.Platforms
	}
	if repo.Platform == nil {
		return nil
	}
	return []*config.Platform{repo.Platform}
}
