// Package views holds jetwatch's templ components and the typed view models
// and chart geometry they render. Handlers build the models; views never
// query anything and never mark data as safe HTML.
package views
