//go:build !unix

package main

import "errors"

func initDir(string, int, int, uint32) (bool, error) {
	return false, errors.New("volume-init runs only on Unix (inside moat's Linux image)")
}
