package main

import "fmt"

// exitWith makes run exit with code, its message already printed.
type exitWith struct{ code int }

func (e exitWith) Error() string { return fmt.Sprintf("exit %d", e.code) }
